//! `--where EXPR`: which records a read keeps by their content. The expression is JMESPath
//! (the query language of the AWS CLI's `--query`), evaluated on each payload parsed as
//! JSON; a record is selected when the result is truthy in JMESPath's sense (not `null`,
//! `false`, `""`, `[]` or `{}`). A payload that is not JSON (not UTF-8, or not a JSON text),
//! or that the archive does not hold (an oversize record, a payload left in S3 with
//! `--no-fetch`), is not selected and is counted apart ([`Verdict::NotJson`]).
//!
//! The crate is `jmespath` (the reference implementation's Rust port, kept in the JMESPath
//! organisation); the compliance examples it ships pass through [`ContentFilter`] in this
//! module's tests.

use std::fmt;
use std::sync::Arc;

use crate::domain::record::{ArchiveRecord, Payload};

/// A compiled `--where` expression. Compiled once (a syntax error is refused before any
/// read, naming its position), evaluated per record; cheap to clone.
#[derive(Clone)]
pub struct ContentFilter {
    text: String,
    expression: Arc<jmespath::Expression<'static>>,
}

/// Why a `--where` expression is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid --where expression {expression:?}: {reason} at column {column}; write it as \
     JMESPath, e.g. \"type == 'refund' && amount > `100`\" (strings in single quotes, numbers \
     in backticks)"
)]
pub struct FilterError {
    /// The expression as given.
    pub expression: String,
    /// What is wrong.
    pub reason: String,
    /// Where (1-based, in characters).
    pub column: usize,
}

/// What a filter says of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The result is truthy: the record is selected.
    Selected,
    /// The result is falsy (or the evaluation failed, e.g. a function given the wrong type).
    NotSelected,
    /// The payload is not JSON, or not in the archive: not selected, and said.
    NotJson,
}

impl ContentFilter {
    /// Compiles `text`; `Err` names the position of a syntax error.
    pub fn parse(text: &str) -> Result<Self, FilterError> {
        let expression = jmespath::compile(text).map_err(|error| FilterError {
            expression: text.to_owned(),
            reason: match &error.reason {
                jmespath::ErrorReason::Parse(reason) => reason.clone(),
                other => other.to_string(),
            },
            column: error.column + 1,
        })?;
        Ok(Self {
            text: text.to_owned(),
            expression: Arc::new(expression),
        })
    }

    /// The expression as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `record` is selected.
    pub fn test(&self, record: &ArchiveRecord) -> Verdict {
        match record.payload() {
            Payload::Bytes(bytes) => self.test_json(bytes),
            Payload::Stored(_) | Payload::Oversize(_) => Verdict::NotJson,
        }
    }

    /// Whether a payload of these bytes is selected.
    pub fn test_json(&self, bytes: &[u8]) -> Verdict {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Verdict::NotJson;
        };
        let Ok(data) = jmespath::Variable::from_json(text) else {
            return Verdict::NotJson;
        };
        match self.expression.search(data) {
            Ok(result) if result.is_truthy() => Verdict::Selected,
            _ => Verdict::NotSelected,
        }
    }
}

impl fmt::Debug for ContentFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ContentFilter").field(&self.text).finish()
    }
}

impl PartialEq for ContentFilter {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for ContentFilter {}

#[cfg(test)]
mod tests {
    use super::*;

    fn selects(expression: &str, payload: &str) -> Verdict {
        ContentFilter::parse(expression)
            .unwrap()
            .test_json(payload.as_bytes())
    }

    #[test]
    fn truthy_results_select_and_the_rest_do_not() {
        let refund = "type == 'refund' && amount > `100`";
        assert_eq!(
            selects(refund, r#"{"type":"refund","amount":150}"#),
            Verdict::Selected
        );
        assert_eq!(
            selects(refund, r#"{"type":"refund","amount":50}"#),
            Verdict::NotSelected
        );
        assert_eq!(
            selects(refund, r#"{"type":"order","amount":150}"#),
            Verdict::NotSelected
        );
        // A missing field is null: not selected, not an error.
        assert_eq!(selects(refund, r#"{"amount":150}"#), Verdict::NotSelected);
        assert_eq!(
            selects("customer.tier == 'gold'", r#"{"customer":{"tier":"gold"}}"#),
            Verdict::Selected
        );
        assert_eq!(
            selects("items[?sku == 'A']", r#"{"items":[{"sku":"A"}]}"#),
            Verdict::Selected
        );
        assert_eq!(
            selects("items[?sku == 'B']", r#"{"items":[{"sku":"A"}]}"#),
            Verdict::NotSelected
        );
        // JMESPath's truthiness: empty strings, lists and objects are false.
        for falsy in [
            r#"{"a":""}"#,
            r#"{"a":[]}"#,
            r#"{"a":{}}"#,
            r#"{"a":false}"#,
            r#"{"a":null}"#,
        ] {
            assert_eq!(selects("a", falsy), Verdict::NotSelected, "{falsy}");
        }
        assert_eq!(selects("a", r#"{"a":0}"#), Verdict::Selected, "0 is truthy");
        // A function given the wrong type fails: not selected.
        assert_eq!(selects("abs(a)", r#"{"a":"x"}"#), Verdict::NotSelected);
    }

    #[test]
    fn payloads_that_are_not_json_are_told_apart() {
        assert_eq!(selects("a", "not json"), Verdict::NotJson);
        assert_eq!(selects("a", ""), Verdict::NotJson);
        let filter = ContentFilter::parse("a").unwrap();
        assert_eq!(filter.test_json(&[0xff, 0xfe]), Verdict::NotJson);
        let mut oversize = ArchiveRecord::received(
            "k".into(),
            crate::domain::sequence::SequenceNumber::parse("1").unwrap(),
            "s".into(),
            1.0,
            Vec::new(),
        );
        oversize.oversize_bytes = Some(500_000);
        assert_eq!(filter.test(&oversize), Verdict::NotJson);
    }

    #[test]
    fn a_syntax_error_names_its_column() {
        let error = ContentFilter::parse("type == 'refund' &&").unwrap_err();
        assert_eq!(error.column, 20, "{error}");
        assert!(error.to_string().contains("at column 20"), "{error}");
        assert!(ContentFilter::parse("a ==== b").is_err());
        assert!(ContentFilter::parse("").is_err());
    }

    /// The compliance examples the jmespath crate ships (tests/compliance/*.json of the
    /// sources cargo built it from): every expression compiles or is refused as
    /// the examples say, and every result is what they say, checked through our filter's
    /// compiled expression and JMESPath truthiness.
    #[test]
    fn the_crate_s_compliance_examples_pass() {
        // The version Cargo.lock resolved, in the registry's sources it was built from.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
        let version = lock
            .split("[[package]]")
            .find(|p| p.contains("name = \"jmespath\""))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
            .map(|v| v.trim_matches('"').to_owned())
            .expect("jmespath in Cargo.lock");
        let cargo_home = std::env::var("CARGO_HOME").map_or_else(
            |_| std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"),
            std::path::PathBuf::from,
        );
        let dir = std::fs::read_dir(cargo_home.join("registry/src"))
            .expect("the registry's sources")
            .map(|index| index.unwrap().path().join(format!("jmespath-{version}")))
            .find(|dir| dir.exists())
            .expect("the jmespath sources")
            .join("tests/compliance");
        let mut cases = 0;
        for entry in std::fs::read_dir(&dir).expect("the compliance directory") {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == "benchmarks.json") {
                continue;
            }
            let suites: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            for suite in suites.as_array().unwrap() {
                let given = suite["given"].to_string();
                for case in suite["cases"].as_array().unwrap() {
                    let expression = case["expression"].as_str().unwrap();
                    cases += 1;
                    let compiled = ContentFilter::parse(expression);
                    if case["error"] == "syntax" {
                        assert!(compiled.is_err(), "{path:?}: {expression} must be refused");
                        continue;
                    }
                    let Ok(filter) = compiled else {
                        panic!("{path:?}: {expression} must compile");
                    };
                    let data = jmespath::Variable::from_json(&given).unwrap();
                    let result = filter.expression.search(data);
                    if case.get("error").is_some() {
                        assert!(result.is_err(), "{path:?}: {expression} must fail");
                        continue;
                    }
                    let result = result.unwrap_or_else(|e| panic!("{path:?}: {expression}: {e}"));
                    let expected =
                        jmespath::Variable::from_json(&case["result"].to_string()).unwrap();
                    assert_eq!(*result, expected, "{path:?}: {expression}");
                    let truthy = filter.test_json(given.as_bytes()) == Verdict::Selected;
                    assert_eq!(truthy, expected.is_truthy(), "{path:?}: {expression}");
                }
            }
        }
        assert!(
            cases > 500,
            "only {cases} compliance cases found in {dir:?}"
        );
    }
}
