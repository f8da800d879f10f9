//! Checks of the SAM template (`template.yaml`) and of deploying it as the README says.
//!
//! 1. Structure and least-privilege IAM, from the YAML itself (CloudFormation short tags
//!    such as `!Ref` are turned into their long JSON form first), and the template's Rules.
//! 2. cfn-lint 1.53.3, `sam validate` (with and without `--lint`, reading `samconfig.toml`),
//!    the SAM transform (run offline by samtranslator), and `sam build` with cargo-lambda,
//!    whose binary must be `bin/package`'s, all from the tools venv that `bin/test`
//!    installs. A missing venv is a failure that says to run `bin/test`, never a skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value, json};

/// Every IAM action the template may grant, with who needs it. The template must grant
/// exactly this set: an extra action is a privilege nothing uses, a missing one breaks the
/// event source mapping or the function at run time.
#[rustfmt::skip]
const ALLOWED_ACTIONS: &[(&str, &str)] = &[
    // Event source mapping (Lambda's poller, with the function's role): the actions the
    // Lambda guide lists for a Kinesis mapping, minus ListStreams (needs "*", unused with a
    // stream ARN) and SubscribeToShard (enhanced fan-out consumers only).
    ("kinesis:DescribeStream", "event source mapping: reads the stream and its shards"),
    ("kinesis:DescribeStreamSummary", "event source mapping: stream status and shard count"),
    ("kinesis:GetRecords", "event source mapping: polls the records"),
    ("kinesis:GetShardIterator", "event source mapping: positions each shard reader"),
    ("kinesis:ListShards", "event source mapping: finds shards, including after resharding"),
    ("sqs:SendMessage", "event source mapping: OnFailure destination for exhausted batches"),
    ("s3:PutObject", "event source mapping: OnFailureDestination=s3 writes the failed batch"),
    ("s3:ListBucket", "event source mapping: OnFailureDestination=s3 checks the bucket"),
    ("kms:Decrypt", "event source mapping: reads streams encrypted with StreamKmsKeyArns"),
    // (s3:PutObject is also the function's, with OverflowBucketName or ParquetBucketName:
    // write/overflow.rs stores payloads too large for an item, write/parquet.rs the Parquet
    // files, both through aws/objects.rs; and s3:ListBucket too, with CompactionSchedule:
    // compact.rs lists the Parquet prefix.)
    // The function (crates/core/src).
    ("kinesis:ListTagsForStream", "function: aws/streams.rs reads the archive config from tags"),
    ("dynamodb:BatchWriteItem", "function: write/all.rs writes ALL-mode archives"),
    ("dynamodb:PutItem", "function: write/latest.rs conditional puts for LATEST-mode archives"),
    (
        "dynamodb:DescribeTable",
        "function: write/mod.rs names a key schema that does not fit after a ValidationException",
    ),
    // With CompactionSchedule only.
    ("s3:GetObject", "function: compact.rs reads the files it compacts, the marker and its progress"),
    ("s3:DeleteObject", "function: compact.rs deletes the files a compacted file replaced"),
];

/// The only managed policy the role may carry (CloudWatch Logs).
const BASIC_EXECUTION_ROLE: &str =
    "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";

fn repo_root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .canonicalize()
        .expect("repository root")
}

fn template_path() -> PathBuf {
    repo_root().join("template.yaml")
}

// ---------------------------------------------------------------------------------------
// YAML with CloudFormation short tags -> JSON in the long intrinsic form
// ---------------------------------------------------------------------------------------

fn yaml_to_json(value: &serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(*b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                json!(n.as_f64().expect("a YAML number"))
            }
        }
        Y::String(s) => Value::String(s.clone()),
        Y::Sequence(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s.clone(),
                    other => serde_yaml_ng::to_string(other).unwrap().trim().to_string(),
                };
                out.insert(key, yaml_to_json(v));
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = yaml_to_json(&tagged.value);
            let (key, arg) = match name {
                "Ref" => ("Ref".to_string(), inner),
                "Condition" => ("Condition".to_string(), inner),
                // `!GetAtt Res.Attr` is the string form of ["Res", "Attr"].
                "GetAtt" => {
                    let arg = match inner {
                        Value::String(s) => {
                            let (res, attr) = s.split_once('.').expect("!GetAtt Res.Attr");
                            json!([res, attr])
                        }
                        other => other,
                    };
                    ("Fn::GetAtt".to_string(), arg)
                }
                other => (format!("Fn::{other}"), inner),
            };
            json!({ key: arg })
        }
    }
}

fn load_template() -> Value {
    let path = template_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
    yaml_to_json(&yaml)
}

fn resources(tpl: &Value) -> &Map<String, Value> {
    tpl["Resources"]
        .as_object()
        .expect("Resources is a mapping")
}

/// The single resource of a type, as (logical id, resource).
fn only_resource<'a>(tpl: &'a Value, ty: &str) -> (&'a str, &'a Value) {
    let found: Vec<_> = resources(tpl)
        .iter()
        .filter(|(_, r)| r["Type"] == ty)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {ty}, found {}",
        found.len()
    );
    (found[0].0.as_str(), found[0].1)
}

/// A function's properties with the template's `Globals.Function` underneath.
fn function_properties(tpl: &Value, function: &Value) -> Map<String, Value> {
    let mut props = tpl["Globals"]["Function"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (k, v) in function["Properties"]
        .as_object()
        .expect("function Properties")
    {
        props.insert(k.clone(), v.clone());
    }
    props
}

/// A CloudFormation number, written as a YAML number or a string.
fn number(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| i.to_string())
            })
            .collect(),
        other => vec![other.to_string()],
    }
}

fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

// ---------------------------------------------------------------------------------------
// IAM
// ---------------------------------------------------------------------------------------

/// Every permission statement of the template's roles and policies, with where it is.
fn permission_statements(tpl: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (id, res) in resources(tpl) {
        let props = &res["Properties"];
        let mut docs = Vec::new();
        match res["Type"].as_str() {
            Some("AWS::IAM::Role") => {
                for policy in as_list(&props["Policies"]) {
                    docs.push((
                        format!("{id}/{}", policy["PolicyName"].as_str().unwrap_or("?")),
                        policy["PolicyDocument"].clone(),
                    ));
                }
            }
            Some("AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" | "AWS::IAM::RolePolicy") => {
                docs.push((id.clone(), props["PolicyDocument"].clone()));
            }
            Some("AWS::Serverless::Function") => {
                // Inline statements given to a SAM-generated role.
                for policy in as_list(&props["Policies"]) {
                    if policy.get("Statement").is_some() {
                        docs.push((format!("{id}/Policies"), policy.clone()));
                    }
                }
            }
            _ => {}
        }
        for (where_, doc) in docs {
            for st in as_list(&doc["Statement"]) {
                out.push((where_.clone(), st));
            }
        }
    }
    out
}

fn is_data_action(action: &str) -> bool {
    let service = action.split(':').next().unwrap_or("").to_ascii_lowercase();
    matches!(
        service.as_str(),
        "kinesis" | "dynamodb" | "sqs" | "s3" | "kms"
    )
}

/// What a resolved template (parameters applied) must grant: these streams, their tables,
/// the one failure destination.
struct Expected {
    streams: Vec<String>,
    destination: &'static str,
    /// With `OverflowBucketName`: the one object pattern the function may s3:PutObject on,
    /// `arn:${AWS::Partition}:s3:::BUCKET/PREFIX/*`.
    overflow: Option<&'static str>,
    /// With `ParquetBucketName`: the one object pattern the function may s3:PutObject its
    /// Parquet files on, `arn:${AWS::Partition}:s3:::BUCKET/PREFIX/*`.
    parquet: Option<&'static str>,
    /// `StreamKmsKeyArns`: the keys kms:Decrypt may use (none: no kms:Decrypt at all).
    kms_keys: Vec<String>,
    /// With `CompactionSchedule`: what the function may list, read and delete.
    compaction: Option<CompactionGrant>,
}

/// The grants of the scheduled compaction: s3:ListBucket on the Parquet bucket (with an
/// `s3:prefix` condition when there is a prefix), s3:GetObject and s3:DeleteObject on the
/// Parquet objects (those of [`Expected::parquet`]).
struct CompactionGrant {
    /// `arn:${AWS::Partition}:s3:::BUCKET`.
    bucket: &'static str,
    /// The `s3:prefix` the listing is limited to (`PREFIX/*`); `None`: the whole bucket.
    listed_prefix: Option<&'static str>,
}

impl Expected {
    /// Whether `r` is one of the object prefixes the function writes (overflow payloads,
    /// Parquet files), for a statement of s3:PutObject alone.
    fn function_objects(&self, r: &Value, actions: &[String]) -> bool {
        (self.overflow.is_some_and(|o| r == o) || self.parquet.is_some_and(|p| r == p))
            && actions.iter().all(|a| a == "s3:PutObject")
    }

    /// Whether a statement of `actions` on `r` is one the scheduled compaction needs: reading
    /// and deleting the Parquet objects, or listing their bucket (only under the prefix).
    fn compaction_objects(&self, st: &Value, r: &Value, actions: &[String]) -> bool {
        let Some(grant) = &self.compaction else {
            return false;
        };
        let objects = self.parquet.is_some_and(|p| r == p)
            && actions
                .iter()
                .all(|a| ["s3:GetObject", "s3:DeleteObject"].contains(&a.as_str()));
        let listing = r == grant.bucket
            && actions.iter().all(|a| a == "s3:ListBucket")
            && match grant.listed_prefix {
                Some(prefix) => st["Condition"] == json!({"StringLike": {"s3:prefix": prefix}}),
                None => st.get("Condition").is_none(),
            };
        objects || listing
    }

    /// `arn:aws:kinesis:R:A:stream/NAME` -> `arn:aws:dynamodb:R:A:table/NAME-archive-*`.
    fn tables(&self) -> Vec<String> {
        self.streams
            .iter()
            .map(|s| {
                let (head, name) = s.split_once(":stream/").expect("a stream ARN");
                format!(
                    "{}:table/{name}-archive-*",
                    head.replacen(":kinesis:", ":dynamodb:", 1)
                )
            })
            .collect()
    }
}

/// `${Bucket.Arn}/*`, the objects of a bucket, as written (`Fn::Sub`) or as SAM CLI's
/// language-extensions processor leaves it (the bare string).
fn failure_bucket_objects(r: &Value) -> Option<&str> {
    r["Fn::Sub"]
        .as_str()
        .or(r.as_str())
        .filter(|s| s.starts_with("${") && s.ends_with(".Arn}/*"))
}

/// Everything wrong with a resolved template's IAM; empty when it is least privilege.
fn iam_violations(tpl: &Value, expected: &Expected) -> Vec<String> {
    let mut v = Vec::new();
    let other_destination = if expected.destination == "s3" {
        "sqs:"
    } else {
        "s3:"
    };
    let allowed: Vec<String> = ALLOWED_ACTIONS
        .iter()
        .map(|(a, _)| a.to_ascii_lowercase())
        .filter(|a| {
            if a == "s3:getobject" || a == "s3:deleteobject" {
                return expected.compaction.is_some();
            }
            !a.starts_with(other_destination)
                || ((expected.overflow.is_some() || expected.parquet.is_some())
                    && a == "s3:putobject")
                || (expected.compaction.is_some() && a == "s3:listbucket")
        })
        .filter(|a| a != "kms:decrypt" || !expected.kms_keys.is_empty())
        .collect();
    let mut overflow_granted = false;
    let mut parquet_granted = false;
    let mut compaction_granted = (false, false);
    let mut granted: Vec<String> = Vec::new();

    for (where_, st) in permission_statements(tpl) {
        let sid = st["Sid"].as_str().unwrap_or("(no Sid)").to_string();
        let at = format!("{where_} {sid}");
        if st["Effect"] != "Allow" {
            continue; // a Deny only takes away
        }
        for forbidden in ["NotAction", "NotResource", "NotPrincipal"] {
            if st.get(forbidden).is_some() {
                v.push(format!("{at}: uses {forbidden}"));
            }
        }
        let actions = strings(&st["Action"]);
        let targets = as_list(&st["Resource"]);
        if targets.is_empty() {
            v.push(format!("{at}: no Resource"));
        }
        for action in &actions {
            let lower = action.to_ascii_lowercase();
            if action.contains('*') || action.contains('?') {
                v.push(format!("{at}: wildcard action {action}"));
            }
            if !allowed.contains(&lower) {
                v.push(format!(
                    "{at}: action {action} is not used by the function or the event source mapping"
                ));
            }
            granted.push(lower);
        }
        if actions.iter().any(|a| is_data_action(a)) {
            for r in &targets {
                // The one wildcard allowed: a stream's own `<name>-archive-*` tables.
                let own_tables = r
                    .as_str()
                    .is_some_and(|s| expected.tables().iter().any(|t| t == s));
                let bucket_objects = failure_bucket_objects(r).is_some();
                // The overflow and Parquet prefixes, for s3:PutObject alone.
                let overflow_objects = expected.function_objects(r, &actions)
                    || expected.compaction_objects(&st, r, &actions);
                if r == "*"
                    || (r.as_str().is_some_and(|s| s.contains('*'))
                        && !own_tables
                        && !bucket_objects
                        && !overflow_objects)
                {
                    v.push(format!("{at}: data action on wildcard resource {r}"));
                }
            }
        }
        // Each service's resources, exactly.
        let services: std::collections::BTreeSet<String> = actions
            .iter()
            .map(|a| a.split(':').next().unwrap_or("").to_ascii_lowercase())
            .collect();
        if services.len() > 1 {
            v.push(format!(
                "{at}: mixes services {services:?} in one statement"
            ));
        }
        // Each statement on streams or tables names exactly the expected ones.
        let names: Vec<String> = targets
            .iter()
            .map(|r| {
                r.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| r.to_string())
            })
            .collect();
        if services.contains("kinesis") && names != expected.streams {
            v.push(format!(
                "{at}: kinesis resources {names:?} are not exactly the streams {:?}",
                expected.streams
            ));
        }
        if services.contains("dynamodb") && names != expected.tables() {
            v.push(format!(
                "{at}: dynamodb resources {names:?} are not exactly the tables {:?}",
                expected.tables()
            ));
        }
        // The stream keys, and only for the records of the archived streams.
        if services.contains("kms") {
            if names != expected.kms_keys {
                v.push(format!(
                    "{at}: kms resources {names:?} are not exactly the keys {:?}",
                    expected.kms_keys
                ));
            }
            let context = &st["Condition"]["StringEquals"]["kms:EncryptionContext:aws:kinesis:arn"];
            if strings(context) != expected.streams
                || st["Condition"].as_object().is_none_or(|c| c.len() != 1)
            {
                v.push(format!(
                    "{at}: kms:Decrypt is not limited to the encryption context of the streams \
                     {:?}: {}",
                    expected.streams, st["Condition"]
                ));
            }
        }
        for r in &targets {
            if services.contains("s3") {
                let bucket = |b: &Value| {
                    b.as_str()
                        .and_then(|q| resources(tpl).get(q))
                        .is_some_and(|q| q["Type"] == "AWS::S3::Bucket")
                };
                let compaction = expected.compaction_objects(&st, r, &actions);
                if compaction {
                    let listing = actions.iter().any(|a| a == "s3:ListBucket");
                    compaction_granted.0 |= listing;
                    compaction_granted.1 |= !listing;
                }
                let overflow = expected.function_objects(r, &actions) || compaction;
                overflow_granted |= overflow && expected.overflow.is_some_and(|o| r == o);
                parquet_granted |=
                    overflow && !compaction && expected.parquet.is_some_and(|p| r == p);
                let failure_bucket = (r["Fn::GetAtt"][1] == "Arn" && bucket(&r["Fn::GetAtt"][0]))
                    || failure_bucket_objects(r)
                        .and_then(|s| s.strip_prefix("${"))
                        .and_then(|s| s.strip_suffix(".Arn}/*"))
                        .is_some_and(|b| bucket(&json!(b)));
                if !overflow && (!failure_bucket || expected.destination != "s3") {
                    v.push(format!(
                        "{at}: s3 resource {r} is neither the failure bucket of this template \
                         nor the overflow prefix {:?} nor the Parquet prefix {:?} (s3:PutObject \
                         only)",
                        expected.overflow, expected.parquet
                    ));
                }
            }
            if services.contains("sqs") {
                let ok = r["Fn::GetAtt"][1] == "Arn"
                    && r["Fn::GetAtt"][0]
                        .as_str()
                        .and_then(|q| resources(tpl).get(q))
                        .is_some_and(|q| q["Type"] == "AWS::SQS::Queue");
                if !ok {
                    v.push(format!(
                        "{at}: sqs resource {r} is not a queue of this template"
                    ));
                }
            }
        }
    }
    if let Some(parquet) = expected.parquet
        && !parquet_granted
    {
        v.push(format!(
            "s3:PutObject on {parquet} is not granted, but the function writes Parquet files there"
        ));
    }
    if let Some(grant) = &expected.compaction
        && compaction_granted != (true, true)
    {
        v.push(format!(
            "the scheduled compaction lacks s3:ListBucket on {} (listing {:?} only) or \
             s3:GetObject and s3:DeleteObject on {:?}",
            grant.bucket, grant.listed_prefix, expected.parquet
        ));
    }
    if let Some(overflow) = expected.overflow
        && !overflow_granted
    {
        v.push(format!(
            "s3:PutObject on {overflow} is not granted, but the function stores overflow payloads there"
        ));
    }
    for (action, why) in ALLOWED_ACTIONS {
        if !allowed.contains(&action.to_ascii_lowercase()) {
            if granted.contains(&action.to_ascii_lowercase()) {
                v.push(format!(
                    "{action} is granted, but this deployment does not use it ({why}; failure \
                     destination {}, keys {:?})",
                    expected.destination, expected.kms_keys
                ));
            }
            continue;
        }
        if !granted.contains(&action.to_ascii_lowercase()) {
            v.push(format!("{action} is not granted, but it is needed ({why})"));
        }
    }
    v
}

/// The role the function runs with, checked to be the template's own role.
fn function_role<'a>(tpl: &'a Value, props: &Map<String, Value>) -> (&'a str, &'a Value) {
    let role_ref = props
        .get("Role")
        .expect("the function names its own Role: a SAM-generated role would get AWSLambdaKinesisExecutionRole (kinesis on \"*\")");
    let role_id = role_ref["Fn::GetAtt"][0]
        .as_str()
        .expect("Role: !GetAtt <role>.Arn");
    assert_eq!(
        role_ref["Fn::GetAtt"][1], "Arn",
        "Role must be the role's Arn"
    );
    let (id, role) = resources(tpl)
        .get_key_value(role_id)
        .unwrap_or_else(|| panic!("role {role_id} is not in the template"));
    assert_eq!(role["Type"], "AWS::IAM::Role");
    (id.as_str(), role)
}

fn check_role(role: &Value) {
    let trust = as_list(&role["Properties"]["AssumeRolePolicyDocument"]["Statement"]);
    assert_eq!(trust.len(), 1, "one trust statement");
    assert_eq!(trust[0]["Principal"]["Service"], "lambda.amazonaws.com");
    assert_eq!(strings(&trust[0]["Action"]), ["sts:AssumeRole"]);
    let managed = as_list(&role["Properties"]["ManagedPolicyArns"]);
    // SAM CLI's language-extensions processor unwraps an Fn::Sub it cannot resolve.
    assert!(
        managed == vec![json!({"Fn::Sub": BASIC_EXECUTION_ROLE})]
            || managed == vec![json!(BASIC_EXECUTION_ROLE)],
        "the only managed policy is AWSLambdaBasicExecutionRole (CloudWatch Logs): {managed:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 1. The template itself
// ---------------------------------------------------------------------------------------

#[test]
fn parameters_have_the_documented_values() {
    let tpl = load_template();
    let p = &tpl["Parameters"];

    assert_eq!(p["StreamArn"]["Type"], "String");
    let pattern = p["StreamArn"]["AllowedPattern"]
        .as_str()
        .expect("StreamArn has an AllowedPattern");
    assert!(
        pattern.contains(":kinesis:") && pattern.contains(":stream/"),
        "{pattern}"
    );

    assert_eq!(
        p["StreamPosition"]["AllowedValues"],
        json!(["TRIM_HORIZON", "LATEST"])
    );
    assert_eq!(p["StreamPosition"]["Default"], "TRIM_HORIZON");

    assert_eq!(p["BatchSize"]["Type"], "Number");
    // Batches of up to 1,000 records, waiting up to 60 s to fill: Parquet files of a useful
    // size at low traffic (README, "Batches and file sizes").
    assert_eq!(number(&p["BatchSize"]["Default"]), Some(1000));
    assert_eq!(
        number(&p["MaximumBatchingWindowInSeconds"]["Default"]),
        Some(60)
    );
    assert_eq!(number(&p["BatchSize"]["MinValue"]), Some(1));
    assert_eq!(number(&p["BatchSize"]["MaxValue"]), Some(10000));

    assert_eq!(
        p["Architecture"]["AllowedValues"],
        json!(["x86_64", "arm64"])
    );
    assert_eq!(p["Architecture"]["Default"], "x86_64");

    let retries = &p["MaximumRetryAttempts"];
    assert_eq!(retries["Type"], "Number");
    assert_eq!(number(&retries["MinValue"]), Some(-1));
    assert_eq!(number(&retries["MaxValue"]), Some(10000));
    let default = number(&retries["Default"]).expect("MaximumRetryAttempts has a default");
    assert!((-1..=10000).contains(&default), "{default}");

    // Every optional parameter has a default that its own limits accept.
    for (name, param) in p.as_object().unwrap() {
        if name == "StreamArn" {
            continue;
        }
        let default = param
            .get("Default")
            .unwrap_or_else(|| panic!("{name} has no Default"));
        if let Some(allowed) = param["AllowedValues"].as_array() {
            let d = default.to_string().trim_matches('"').to_string();
            assert!(
                allowed.iter().any(|a| a.to_string().trim_matches('"') == d),
                "{name}: default {default} not in {allowed:?}"
            );
        }
        if let Some(n) = number(default) {
            if let Some(min) = number(&param["MinValue"]) {
                assert!(n >= min, "{name}: default {n} < MinValue {min}");
            }
            if let Some(max) = number(&param["MaxValue"]) {
                assert!(n <= max, "{name}: default {n} > MaxValue {max}");
            }
        }
    }
}

#[test]
fn function_builds_the_bootstrap_binary_for_al2023() {
    let tpl = load_template();
    // Fn::ForEach (one mapping per stream) is expanded before the SAM transform runs.
    assert_eq!(
        tpl["Transform"],
        json!(["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"])
    );
    assert!(
        tpl["Description"].as_str().is_some_and(|d| !d.is_empty()),
        "top-level Description"
    );
    assert!(tpl["Globals"]["Function"].is_object(), "Globals.Function");

    let (_, function) = only_resource(&tpl, "AWS::Serverless::Function");
    let props = function_properties(&tpl, function);
    assert_eq!(props["Runtime"], "provided.al2023");
    assert_eq!(props["Handler"], "bootstrap");
    assert_eq!(props["Architectures"], json!([{"Ref": "Architecture"}]));
    assert_eq!(function["Metadata"]["BuildMethod"], "rust-cargolambda");
    assert_eq!(
        function["Metadata"]["BuildProperties"]["Binary"],
        "bootstrap"
    );

    // CodeUri is the lambda crate, which has the `bootstrap` bin: cargo-lambda run there
    // resolves kinarch-lambda's features alone (bin/package's --package kinarch-lambda),
    // with the workspace root's [profile.release].
    let code_uri = props["CodeUri"].as_str().expect("CodeUri is a local path");
    let code_dir = repo_root()
        .join(code_uri)
        .canonicalize()
        .expect("CodeUri exists");
    assert_eq!(
        code_dir,
        repo_root().join("crates/lambda"),
        "CodeUri must be the lambda crate"
    );
    let root_manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    assert!(root_manifest.contains("[workspace]") && root_manifest.contains("crates/lambda"));
    assert!(root_manifest.contains("[profile.release]"));
    let lambda_manifest = std::fs::read_to_string(code_dir.join("Cargo.toml")).unwrap();
    assert!(lambda_manifest.contains("name = \"kinarch-lambda\""));
    assert!(
        lambda_manifest.contains("[[bin]]") && lambda_manifest.contains("name = \"bootstrap\"")
    );

    assert_eq!(props["LoggingConfig"]["LogFormat"], "JSON");
    let env = &props["Environment"]["Variables"];
    assert_eq!(env["KINARCH_CONFIG_REFRESH_SECONDS"], "180");
    assert!(
        env.get("RUST_LOG").is_some()
            || env.get("AWS_LAMBDA_LOG_LEVEL").is_some()
            || props["LoggingConfig"].get("ApplicationLogLevel").is_some(),
        "a log level is configured"
    );
}

const ONE_STREAM: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/orders";

/// The three-stream list the template is linted and checked with (names with `.`, `_`).
const THREE_STREAMS: [&str; 3] = [
    "arn:aws:kinesis:us-east-1:123456789012:stream/orders",
    "arn:aws:kinesis:us-east-1:123456789012:stream/pay.ments",
    "arn:aws:kinesis:us-east-1:123456789012:stream/audit_log",
];

/// The overflow grant of the deployments with `OverflowBucketName=big-records` and
/// `OverflowPrefix=kinarch`, as the resolved template holds it: `kinarch/*`, not `kinarch*`
/// (which would also cover `kinarch-other/`).
const OVERFLOW_OBJECTS: &str = "arn:${AWS::Partition}:s3:::big-records/kinarch/*";

/// The same without a prefix: the whole bucket.
const OVERFLOW_BUCKET_OBJECTS: &str = "arn:${AWS::Partition}:s3:::other-records/*";

/// The Parquet grant of `ParquetBucketName=history`, `ParquetPrefix=kinarch/parquet`.
const PARQUET_OBJECTS: &str = "arn:${AWS::Partition}:s3:::history/kinarch/parquet/*";

/// The same without a prefix.
const PARQUET_BUCKET_OBJECTS: &str = "arn:${AWS::Partition}:s3:::history/*";

/// The Parquet bucket itself (what the scheduled compaction lists).
const PARQUET_BUCKET: &str = "arn:${AWS::Partition}:s3:::history";

/// Two customer managed keys of SSE-KMS streams (`StreamKmsKeyArns`).
const KMS_KEYS: [&str; 2] = [
    "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "arn:aws:kms:us-east-1:123456789012:key/0987dcba-09fe-87dc-65ba-ab0987654321",
];

/// The parameter sets the resolved template is checked with, and what each must grant.
fn deployments() -> Vec<(Value, Expected)> {
    let three = THREE_STREAMS.join(",");
    let streams = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let expected = |list: &[&str], destination, overflow| Expected {
        streams: streams(list),
        destination,
        overflow,
        parquet: None,
        kms_keys: Vec::new(),
        compaction: None,
    };
    vec![
        (
            json!({"StreamArn": ONE_STREAM}),
            expected(&[ONE_STREAM], "sqs", None),
        ),
        (
            json!({"StreamArns": three}),
            expected(&THREE_STREAMS, "sqs", None),
        ),
        (
            json!({"StreamArns": three, "OnFailureDestination": "s3",
                   "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:ops"}),
            expected(&THREE_STREAMS, "s3", None),
        ),
        (
            json!({"StreamArn": ONE_STREAM, "OverflowBucketName": "big-records",
                   "OverflowPrefix": "kinarch"}),
            expected(&[ONE_STREAM], "sqs", Some(OVERFLOW_OBJECTS)),
        ),
        (
            json!({"StreamArns": three, "OnFailureDestination": "s3",
                   "OverflowBucketName": "big-records", "OverflowPrefix": "kinarch"}),
            expected(&THREE_STREAMS, "s3", Some(OVERFLOW_OBJECTS)),
        ),
        (
            json!({"StreamArns": three, "StreamKmsKeyArns": KMS_KEYS.join(","),
                   "OverflowBucketName": "other-records"}),
            Expected {
                kms_keys: streams(&KMS_KEYS),
                ..expected(&THREE_STREAMS, "sqs", Some(OVERFLOW_BUCKET_OBJECTS))
            },
        ),
        (
            json!({"StreamArn": ONE_STREAM, "StreamKmsKeyArns": KMS_KEYS[0]}),
            Expected {
                kms_keys: streams(&KMS_KEYS[..1]),
                ..expected(&[ONE_STREAM], "sqs", None)
            },
        ),
        (
            json!({"StreamArns": three, "ParquetBucketName": "history",
                   "ParquetPrefix": "kinarch/parquet", "OverflowBucketName": "big-records",
                   "OverflowPrefix": "kinarch"}),
            Expected {
                parquet: Some(PARQUET_OBJECTS),
                ..expected(&THREE_STREAMS, "sqs", Some(OVERFLOW_OBJECTS))
            },
        ),
        (
            json!({"StreamArn": ONE_STREAM, "ParquetBucketName": "history"}),
            Expected {
                parquet: Some(PARQUET_BUCKET_OBJECTS),
                ..expected(&[ONE_STREAM], "sqs", None)
            },
        ),
        // 9: the scheduled compaction under a prefix, beside a failure bucket (whose own
        // s3:ListBucket stays on that bucket).
        (
            json!({"StreamArns": three, "ParquetBucketName": "history",
                   "ParquetPrefix": "kinarch/parquet", "CompactionSchedule": "rate(1 hour)",
                   "OnFailureDestination": "s3"}),
            Expected {
                parquet: Some(PARQUET_OBJECTS),
                compaction: Some(CompactionGrant {
                    bucket: PARQUET_BUCKET,
                    listed_prefix: Some("kinarch/parquet/*"),
                }),
                ..expected(&THREE_STREAMS, "s3", None)
            },
        ),
        // 10: the scheduled compaction of a whole bucket.
        (
            json!({"StreamArn": ONE_STREAM, "ParquetBucketName": "history",
                   "CompactionSchedule": "cron(15 * * * ? *)"}),
            Expected {
                parquet: Some(PARQUET_BUCKET_OBJECTS),
                compaction: Some(CompactionGrant {
                    bucket: PARQUET_BUCKET,
                    listed_prefix: None,
                }),
                ..expected(&[ONE_STREAM], "sqs", None)
            },
        ),
    ]
}

/// The mappings of a resolved template, by the stream they read.
fn mappings(tpl: &Value) -> Vec<&Value> {
    resources(tpl)
        .values()
        .filter(|r| r["Type"] == "AWS::Lambda::EventSourceMapping")
        .collect()
}

#[test]
fn kinesis_event_reports_partial_failures_and_has_a_failure_queue() {
    for (params, expected) in deployments() {
        let tpl = resolved_template(&params);
        let (function_id, _) = only_resource(&tpl, "AWS::Serverless::Function");
        let events = mappings(&tpl);
        assert_eq!(
            events.len(),
            expected.streams.len(),
            "one event source per stream: {params}"
        );
        let read: Vec<&str> = events
            .iter()
            .map(|e| e["Properties"]["EventSourceArn"].as_str().unwrap())
            .collect();
        for stream in &expected.streams {
            assert!(
                read.contains(&stream.as_str()),
                "no mapping reads {stream}: {read:?}"
            );
        }
        let destination = if expected.destination == "s3" {
            let (bucket_id, _) = only_resource(&tpl, "AWS::S3::Bucket");
            assert!(
                !resources(&tpl)
                    .values()
                    .any(|r| r["Type"] == "AWS::SQS::Queue")
            );
            json!({"Fn::GetAtt": [bucket_id, "Arn"]})
        } else {
            let (queue_id, _) = only_resource(&tpl, "AWS::SQS::Queue");
            assert!(
                !resources(&tpl)
                    .values()
                    .any(|r| r["Type"] == "AWS::S3::Bucket")
            );
            json!({"Fn::GetAtt": [queue_id, "Arn"]})
        };
        for event in events {
            let e = &event["Properties"];
            assert_eq!(e["FunctionName"], json!({"Ref": function_id}));
            assert_eq!(e["StartingPosition"], "TRIM_HORIZON");
            assert_eq!(number(&e["BatchSize"]), Some(1000));
            assert_eq!(number(&e["MaximumBatchingWindowInSeconds"]), Some(60));
            assert_eq!(number(&e["MaximumRetryAttempts"]), Some(10));
            assert_eq!(number(&e["ParallelizationFactor"]), Some(1));
            assert_eq!(number(&e["MaximumRecordAgeInSeconds"]), Some(-1));
            assert_eq!(e["BisectBatchOnFunctionError"], true);
            assert_eq!(
                e["FunctionResponseTypes"],
                json!(["ReportBatchItemFailures"])
            );
            assert_eq!(
                e["DestinationConfig"]["OnFailure"]["Destination"],
                destination
            );
        }

        // Alarms only with a topic: IteratorAge (Maximum), Errors, and the queue's messages.
        let alarms: Vec<&Value> = resources(&tpl)
            .values()
            .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
            .collect();
        if params.get("AlarmTopicArn").is_none() {
            assert!(alarms.is_empty(), "alarms without AlarmTopicArn: {params}");
        } else {
            let metrics: Vec<(&str, &str)> = alarms
                .iter()
                .map(|a| {
                    let p = &a["Properties"];
                    (
                        p["MetricName"].as_str().unwrap(),
                        p["Statistic"].as_str().unwrap(),
                    )
                })
                .collect();
            assert!(metrics.contains(&("IteratorAge", "Maximum")), "{metrics:?}");
            assert!(metrics.contains(&("Errors", "Sum")), "{metrics:?}");
            for a in &alarms {
                assert_eq!(
                    a["Properties"]["AlarmActions"],
                    json!([params["AlarmTopicArn"]])
                );
            }
        }

        // Outputs: function name and ARN, queue URL and ARN (or the bucket).
        let outputs: Vec<Value> = tpl["Outputs"]
            .as_object()
            .expect("Outputs")
            .values()
            .map(|o| o["Value"].clone())
            .collect();
        let mut wanted = vec![
            json!({"Ref": function_id}),
            json!({"Fn::GetAtt": [function_id, "Arn"]}),
        ];
        if expected.destination == "sqs" {
            let (queue_id, _) = only_resource(&tpl, "AWS::SQS::Queue");
            wanted.push(json!({"Ref": queue_id}));
            wanted.push(json!({"Fn::GetAtt": [queue_id, "Arn"]}));
        } else {
            let (bucket_id, _) = only_resource(&tpl, "AWS::S3::Bucket");
            wanted.push(json!({"Ref": bucket_id}));
        }
        for wanted in wanted {
            assert!(outputs.contains(&wanted), "no output with value {wanted}");
        }
    }
}

#[test]
fn iam_is_least_privilege() {
    for (params, expected) in deployments() {
        let tpl = resolved_template(&params);
        let (_, function) = only_resource(&tpl, "AWS::Serverless::Function");
        let props = function_properties(&tpl, function);
        assert!(
            props.get("Policies").is_none(),
            "permissions belong in the explicit role, not in SAM Policies"
        );
        let (_, role) = function_role(&tpl, &props);
        check_role(role);
        let violations = iam_violations(&tpl, &expected);
        assert!(
            violations.is_empty(),
            "IAM problems with {params}:\n  {}",
            violations.join("\n  ")
        );
    }
}

fn role_statements<'a>(tpl: &'a mut Value, role_id: &str) -> &'a mut Vec<Value> {
    tpl["Resources"][role_id]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array_mut()
        .expect("the role has an inline policy")
}

fn table_resource(statements: &[Value]) -> Value {
    statements
        .iter()
        .find(|st| {
            strings(&st["Action"])
                .iter()
                .any(|a| a.starts_with("dynamodb:"))
        })
        .expect("a dynamodb statement")["Resource"]
        .clone()
}

type Mutation = Box<dyn Fn(&mut Vec<Value>)>;

/// Each mutation of the role's statements makes the IAM check fail.
fn assert_each_is_caught(
    tpl: &Value,
    role_id: &str,
    expected: &Expected,
    mutations: Vec<(&str, Mutation)>,
) {
    for (what, mutate) in mutations {
        let mut t = tpl.clone();
        mutate(role_statements(&mut t, role_id));
        assert!(
            !iam_violations(&t, expected).is_empty(),
            "the IAM check missed: {what}"
        );
    }
}

/// An edit of one statement of a role (`None`: the statement removed).
type StatementEdit = (&'static str, Option<fn(&mut Value)>);

/// The deployment `deployment` passes the IAM check, and each edit of its role's statement
/// `sid` makes it fail.
fn assert_statement_edits_are_caught(
    deployment: usize,
    sid: &'static str,
    edits: Vec<StatementEdit>,
) {
    let (params, expected) = deployments().swap_remove(deployment);
    let tpl = resolved_template(&params);
    let (role_id, _) = only_resource(&tpl, "AWS::IAM::Role");
    let violations = iam_violations(&tpl, &expected);
    assert!(violations.is_empty(), "{params}: {violations:?}");
    let mutations = edits
        .into_iter()
        .map(|(what, edit)| {
            let mutation: Mutation = Box::new(move |s| {
                let i = s
                    .iter()
                    .position(|st| st["Sid"] == sid)
                    .unwrap_or_else(|| panic!("no statement {sid}"));
                match edit {
                    Some(edit) => edit(&mut s[i]),
                    None => {
                        s.remove(i);
                    }
                }
            });
            (what, mutation)
        })
        .collect();
    assert_each_is_caught(&tpl, role_id, &expected, mutations);
}

/// The IAM check catches what it is meant to catch.
#[test]
fn iam_check_rejects_broad_grants() {
    let (params, expected) = deployments().swap_remove(1);
    let tpl = resolved_template(&params);
    let (role_id, _) = only_resource(&tpl, "AWS::IAM::Role");
    let mutations: Vec<(&str, Mutation)> = vec![
        ("kinesis on *", Box::new(|s| s[0]["Resource"] = json!("*"))),
        (
            "dynamodb:*",
            Box::new(|s| {
                let table = table_resource(s);
                s.push(json!({"Effect": "Allow", "Action": "dynamodb:*", "Resource": table}))
            }),
        ),
        (
            "DeleteTable",
            Box::new(|s| {
                let table = table_resource(s);
                s.push(json!({"Effect": "Allow", "Action": ["dynamodb:DeleteTable"], "Resource": table}))
            }),
        ),
        (
            "ListStreams",
            Box::new(|s| {
                s.push(json!({"Effect": "Allow", "Action": "kinesis:ListStreams", "Resource": "*"}))
            }),
        ),
        (
            "any table",
            Box::new(|s| {
                s.push(json!({"Effect": "Allow", "Action": "dynamodb:PutItem",
                "Resource": {"Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*"}}))
            }),
        ),
        (
            "table not from StreamArn",
            Box::new(|s| {
                s.push(json!({"Effect": "Allow", "Action": "dynamodb:PutItem",
                "Resource": {"Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${AWS::StackName}-archive-*"}}))
            }),
        ),
        (
            "a stream not in the list",
            Box::new(|s| {
                s.push(
                    json!({"Effect": "Allow", "Action": "kinesis:ListTagsForStream",
                "Resource": "arn:aws:kinesis:us-east-1:123456789012:stream/other"}),
                )
            }),
        ),
        (
            "one stream's tables missing",
            Box::new(|s| {
                for st in s.iter_mut() {
                    if let Some(r) = st["Resource"].as_array_mut() {
                        r.retain(|x| !x.as_str().is_some_and(|x| x.contains("audit_log")));
                    }
                }
            }),
        ),
        (
            "the bucket too",
            Box::new(|s| {
                s.push(json!({"Effect": "Allow", "Action": "s3:PutObject",
                "Resource": {"Fn::Sub": "${FailureBucket.Arn}/*"}}))
            }),
        ),
        (
            "missing GetRecords",
            Box::new(|s| {
                for st in s.iter_mut() {
                    if let Some(a) = st["Action"].as_array_mut() {
                        a.retain(|x| x != "kinesis:GetRecords");
                    }
                }
            }),
        ),
        (
            "queue on *",
            Box::new(|s| {
                for st in s.iter_mut() {
                    if st["Action"] == "sqs:SendMessage" {
                        st["Resource"] = json!("*");
                    }
                }
            }),
        ),
    ];
    assert_each_is_caught(&tpl, role_id, &expected, mutations);

    // The overflow bucket: PutObject under the prefix, nothing more.
    assert_statement_edits_are_caught(
        3,
        "FunctionStoresOverflowPayloads",
        vec![
            (
                "the whole overflow bucket",
                Some(|st| st["Resource"] = json!("arn:${AWS::Partition}:s3:::big-records/*")),
            ),
            (
                "every bucket",
                Some(|st| st["Resource"] = json!("arn:${AWS::Partition}:s3:::*")),
            ),
            (
                "reading the overflow objects",
                Some(|st| st["Action"] = json!(["s3:PutObject", "s3:GetObject"])),
            ),
            ("no overflow grant", None),
            (
                "the prefix without its slash (also kinarch-other/)",
                Some(|st| {
                    st["Resource"] = json!("arn:${AWS::Partition}:s3:::big-records/kinarch*")
                }),
            ),
        ],
    );

    // StreamKmsKeyArns: kms:Decrypt on those keys, for the archived streams' records only.
    assert_statement_edits_are_caught(
        5,
        "EventSourceMappingDecryptsStreams",
        vec![
            ("every key", Some(|st| st["Resource"] = json!("*"))),
            (
                "a key not listed",
                Some(|st| {
                    st["Resource"] =
                        json!([KMS_KEYS[0], "arn:aws:kms:us-east-1:123456789012:key/other"])
                }),
            ),
            (
                "any encryption context",
                Some(|st| {
                    st.as_object_mut().unwrap().remove("Condition");
                }),
            ),
            (
                "another stream's records",
                Some(|st| {
                    st["Condition"]["StringEquals"]["kms:EncryptionContext:aws:kinesis:arn"] =
                        json!(["arn:aws:kinesis:us-east-1:123456789012:stream/other"])
                }),
            ),
            (
                "encrypting too",
                Some(|st| st["Action"] = json!(["kms:Decrypt", "kms:GenerateDataKey"])),
            ),
            ("no kms grant", None),
        ],
    );

    // The Parquet prefix: PutObject under it, nothing more.
    assert_statement_edits_are_caught(
        7,
        "FunctionWritesParquetFiles",
        vec![
            (
                "the whole Parquet bucket",
                Some(|st| st["Resource"] = json!("arn:${AWS::Partition}:s3:::history/*")),
            ),
            (
                "reading or deleting the files",
                Some(|st| st["Action"] = json!(["s3:PutObject", "s3:DeleteObject"])),
            ),
            ("no Parquet grant", None),
            (
                "the prefix without its slash",
                Some(|st| {
                    st["Resource"] = json!("arn:${AWS::Partition}:s3:::history/kinarch/parquet*")
                }),
            ),
        ],
    );

    // The scheduled compaction: list under the prefix only, read and delete there only.
    assert_statement_edits_are_caught(
        9,
        "FunctionListsParquetFiles",
        vec![
            (
                "listing the whole bucket",
                Some(|st| {
                    st.as_object_mut().unwrap().remove("Condition");
                }),
            ),
            (
                "listing another prefix",
                Some(|st| st["Condition"] = json!({"StringLike": {"s3:prefix": "*"}})),
            ),
            ("no listing", None),
        ],
    );
    assert_statement_edits_are_caught(
        9,
        "FunctionCompactsParquetFiles",
        vec![
            (
                "deleting in the whole bucket",
                Some(|st| st["Resource"] = json!("arn:${AWS::Partition}:s3:::history/*")),
            ),
            (
                "more than reading and deleting",
                Some(|st| {
                    st["Action"] = json!(["s3:GetObject", "s3:DeleteObject", "s3:PutObjectAcl"])
                }),
            ),
            ("no reading nor deleting", None),
        ],
    );

    // Without OverflowBucketName and StreamKmsKeyArns their statements are not there at all.
    let (params, _) = deployments().swap_remove(0);
    let plain = resolved_template(&params);
    let (role_id, _) = only_resource(&plain, "AWS::IAM::Role");
    let mut plain = plain.clone();
    assert!(role_statements(&mut plain, role_id).iter().all(|st| {
        st["Sid"] != "FunctionStoresOverflowPayloads"
            && st["Sid"] != "FunctionWritesParquetFiles"
            && st["Sid"] != "EventSourceMappingDecryptsStreams"
            && st["Sid"] != "FunctionListsParquetFiles"
            && st["Sid"] != "FunctionCompactsParquetFiles"
    }));
}

/// CompactionSchedule makes an EventBridge rule that invokes the function with a request
/// naming every stream (what `FunctionEvent` decodes), allowed by a permission for that rule
/// only; without it there is neither; and it needs ParquetBucketName.
#[test]
fn compaction_schedule_invokes_the_function_with_every_stream() {
    let (params, _) = deployments().swap_remove(9);
    let tpl = resolved_template(&params);
    let (rule_id, rule) = only_resource(&tpl, "AWS::Events::Rule");
    assert_eq!(rule["Properties"]["ScheduleExpression"], "rate(1 hour)");
    let target = &rule["Properties"]["Targets"][0];
    assert_eq!(
        target["Arn"]["Fn::GetAtt"][0], "ArchiverFunction",
        "{target}"
    );
    // The SAM CLI's language extensions resolve the Fn::Sub to the text EventBridge sends.
    let input = target["Input"]
        .as_str()
        .unwrap_or_else(|| panic!("{target}"));
    let request: Value = serde_json::from_str(input).expect("JSON input");
    assert_eq!(
        request,
        json!({"kinarch": "compact", "streams": THREE_STREAMS})
    );
    let (_, permission) = only_resource(&tpl, "AWS::Lambda::Permission");
    let props = &permission["Properties"];
    assert_eq!(props["Principal"], "events.amazonaws.com");
    assert_eq!(props["Action"], "lambda:InvokeFunction");
    assert_eq!(props["SourceArn"]["Fn::GetAtt"][0], rule_id);
    let (params, _) = deployments().swap_remove(8);
    let plain = resolved_template(&params);
    assert!(
        resources(&plain)
            .values()
            .all(|r| r["Type"] != "AWS::Events::Rule" && r["Type"] != "AWS::Lambda::Permission")
    );
    let failed =
        failed_rules(&json!({"StreamArn": ONE_STREAM, "CompactionSchedule": "rate(1 hour)"}));
    assert!(
        failed
            .iter()
            .any(|f| f.starts_with("CompactionNeedsParquet:")),
        "{failed:?}"
    );
    let pattern = tpl_parameters()["CompactionSchedule"]["AllowedPattern"]
        .as_str()
        .expect("CompactionSchedule has an AllowedPattern")
        .to_owned();
    let good = ["", "rate(1 hour)", "rate(30 minutes)", "cron(15 * * * ? *)"];
    let bad = [
        "hourly",
        "rate(1 hour",
        "rate(1 hour)x",
        "at(2026-01-01T00:00:00)",
    ];
    let values: Vec<&str> = good.iter().chain(&bad).copied().collect();
    assert_eq!(
        matching(&pattern, &values),
        good,
        "AllowedPattern {pattern}"
    );
}

/// The failure bucket (OnFailureDestination=s3) answers TLS requests only, and its batches
/// expire after FailureBucketRetentionDays (0: kept).
#[test]
fn failure_bucket_is_tls_only_and_expires() {
    let s3 = |days: Option<&str>| {
        let mut params = json!({"StreamArn": ONE_STREAM, "OnFailureDestination": "s3"});
        if let Some(days) = days {
            params["FailureBucketRetentionDays"] = json!(days);
        }
        params
    };
    for (params, expiry) in [
        (s3(None), Some(365)),
        (s3(Some("30")), Some(30)),
        (s3(Some("0")), None),
    ] {
        let tpl = resolved_template(&params);
        let (bucket_id, bucket) = only_resource(&tpl, "AWS::S3::Bucket");
        let (_, policy) = only_resource(&tpl, "AWS::S3::BucketPolicy");
        assert_eq!(policy["Properties"]["Bucket"], json!({"Ref": bucket_id}));
        // Kept with the bucket, which is kept when the stack is deleted.
        assert_eq!(bucket["DeletionPolicy"], "Retain");
        assert_eq!(policy["DeletionPolicy"], "Retain");
        let statements = as_list(&policy["Properties"]["PolicyDocument"]["Statement"]);
        let deny = statements
            .iter()
            .find(|s| s["Effect"] == "Deny")
            .expect("a Deny statement");
        assert_eq!(deny["Principal"], "*");
        assert_eq!(strings(&deny["Action"]), ["s3:*"]);
        assert_eq!(
            deny["Condition"],
            json!({"Bool": {"aws:SecureTransport": "false"}})
        );
        let targets = as_list(&deny["Resource"]);
        assert!(
            targets.contains(&json!({"Fn::GetAtt": [bucket_id, "Arn"]}))
                && targets.iter().any(|r| failure_bucket_objects(r)
                    .is_some_and(|o| o == format!("${{{bucket_id}.Arn}}/*"))),
            "the Deny covers the bucket and its objects: {targets:?}"
        );
        let lifecycle = &bucket["Properties"]["LifecycleConfiguration"];
        match expiry {
            Some(days) => {
                let rules = as_list(&lifecycle["Rules"]);
                assert_eq!(rules.len(), 1, "{lifecycle}");
                assert_eq!(rules[0]["Status"], "Enabled");
                assert_eq!(
                    number(&rules[0]["ExpirationInDays"]),
                    Some(days),
                    "{params}"
                );
            }
            None => assert!(
                lifecycle.is_null(),
                "FailureBucketRetentionDays=0 keeps: {lifecycle}"
            ),
        }
    }
}

/// Evaluates the template's Rules for some parameter values (the defaults for the others)
/// as CloudFormation does before it changes anything; prints the failed assertions as
/// `Rule: description` lines of a JSON list.
const RULES: &str = r#"
import json, sys
from samtranslator.yaml_helper import yaml_parse

tpl = yaml_parse(open(sys.argv[1]).read())
given = json.loads(sys.argv[2])
params = {}
for name, p in tpl.get("Parameters", {}).items():
    value = str(given.get(name, p.get("Default", "")))
    params[name] = [v.strip() for v in value.split(",")] if "List" in p["Type"] else value

def ev(x):
    if isinstance(x, list):
        return [ev(i) for i in x]
    if not isinstance(x, dict):
        return x if isinstance(x, (str, bool)) else str(x)
    (k, a), = x.items()
    if k == "Ref": return params[a]
    if k == "Fn::Contains": return ev(a[1]) in ev(a[0])
    if k == "Fn::EachMemberEquals": return all(m == ev(a[1]) for m in ev(a[0]))
    if k == "Fn::EachMemberIn": return all(m in ev(a[1]) for m in ev(a[0]))
    if k == "Fn::Equals": return ev(a[0]) == ev(a[1])
    if k == "Fn::Not": return not ev(a[0])
    if k == "Fn::And": return all(ev(c) for c in a)
    if k == "Fn::Or": return any(ev(c) for c in a)
    raise SystemExit(f"rule function {k} is not evaluated here")

failed = []
for name, rule in tpl.get("Rules", {}).items():
    if "RuleCondition" in rule and not ev(rule["RuleCondition"]):
        continue
    failed += [f"{name}: {a.get('AssertDescription', '')}" for a in rule["Assertions"] if not ev(a["Assert"])]
print(json.dumps(failed))
"#;

fn failed_rules(params: &Value) -> Vec<String> {
    let mut cmd = aws_tool(tool("python"));
    cmd.arg("-c")
        .arg(RULES)
        .arg(template_path())
        .arg(params.to_string());
    serde_json::from_str(&run(cmd)).expect("a JSON list")
}

/// The Rules refuse what Lambda or the template would refuse later, before anything is made:
/// a MaximumRecordAgeInSeconds Lambda does not take (0-59; MinValue/MaxValue bound the
/// rest), and no streams or both ways of naming them.
#[test]
fn rules_refuse_what_a_deploy_would_fail_on() {
    let p = &tpl_parameters();
    assert_eq!(
        number(&p["MaximumRecordAgeInSeconds"]["MinValue"]),
        Some(-1)
    );
    assert_eq!(
        number(&p["MaximumRecordAgeInSeconds"]["MaxValue"]),
        Some(604_800)
    );
    let with_age = |age: &str| json!({"StreamArn": ONE_STREAM, "MaximumRecordAgeInSeconds": age});
    for age in ["-1", "60", "3600", "604800"] {
        let failed = failed_rules(&with_age(age));
        assert!(failed.is_empty(), "age {age}: {failed:?}");
    }
    for age in ["0", "1", "30", "59"] {
        let failed = failed_rules(&with_age(age));
        assert!(
            failed
                .iter()
                .any(|f| f.starts_with("RecordAgeLambdaTakes:")),
            "age {age} passes: {failed:?}"
        );
    }
    for params in [
        json!({}),
        json!({"StreamArn": ONE_STREAM, "StreamArns": THREE_STREAMS.join(",")}),
    ] {
        let failed = failed_rules(&params);
        assert!(
            failed.iter().any(|f| f.starts_with("OneWayToNameStreams:")),
            "{params} passes: {failed:?}"
        );
    }
    assert_eq!(
        failed_rules(&json!({"StreamArns": THREE_STREAMS.join(",")})),
        Vec::<String>::new()
    );
}

fn tpl_parameters() -> Value {
    load_template()["Parameters"].clone()
}

/// OverflowPrefix takes what `kinarch setup --overflow-bucket BUCKET/PREFIX` writes in the
/// tag, without slashes around it (the grant is PREFIX/*), and no IAM wildcard.
#[test]
fn overflow_prefix_is_a_plain_key_prefix() {
    let pattern = tpl_parameters()["OverflowPrefix"]["AllowedPattern"]
        .as_str()
        .expect("OverflowPrefix has an AllowedPattern")
        .to_owned();
    let good = ["", "kinarch", "archive/big", "a.b-c_d/(e)!'f"];
    let bad = ["kinarch/", "/kinarch", "a//b", "kin*", "kin?", "a b", "/"];
    let values: Vec<&str> = good.iter().chain(&bad).copied().collect();
    assert_eq!(
        matching(&pattern, &values),
        good,
        "AllowedPattern {pattern}"
    );
    // ParquetPrefix takes what `kinarch setup --parquet s3://BUCKET/PREFIX` writes, alike.
    assert_eq!(
        tpl_parameters()["ParquetPrefix"]["AllowedPattern"],
        tpl_parameters()["OverflowPrefix"]["AllowedPattern"]
    );
}

/// The values an AllowedPattern takes (matched whole, by Python's `re`, as CloudFormation's
/// Java patterns match these).
fn matching(pattern: &str, values: &[&str]) -> Vec<String> {
    const MATCH: &str = r#"
import json, re, sys
pattern, values = sys.argv[1], json.loads(sys.argv[2])
print(json.dumps([v for v in values if re.fullmatch(pattern, v)]))
"#;
    let mut cmd = aws_tool(tool("python"));
    cmd.arg("-c")
        .arg(MATCH)
        .arg(pattern)
        .arg(json!(values).to_string());
    serde_json::from_str(&run(cmd)).unwrap()
}

/// Each stream's mapping has a logical id of its own; a list in which two streams would get
/// the same one (`my-stream`, `my_stream`: `&{Arn}` drops the punctuation) is refused before
/// anything is created, by the expansion SAM CLI and cfn-lint run as CloudFormation does.
#[test]
fn stream_lists_whose_mapping_ids_collide_are_refused() {
    let tpl = resolved_template(&json!({"StreamArns": THREE_STREAMS.join(",")}));
    let ids: std::collections::BTreeSet<&String> = resources(&tpl)
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Lambda::EventSourceMapping")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids.len(), THREE_STREAMS.len(), "{ids:?}");

    let colliding = [
        "arn:aws:kinesis:us-east-1:123456789012:stream/my-stream",
        "arn:aws:kinesis:us-east-1:123456789012:stream/my_stream",
    ];
    let mut resolve = aws_tool(tool("python"));
    resolve
        .arg("-c")
        .arg(RESOLVE)
        .arg(template_path())
        .arg(json!({"StreamArns": colliding.join(",")}).to_string());
    let out = resolve.output().expect("python runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("conflict"),
        "SAM CLI expanded a list whose mapping ids collide ({}): {stderr}",
        out.status
    );

    let (_dir, copy) = stream_list_copy(&colliding);
    let mut lint = aws_tool(tool("cfn-lint"));
    lint.arg(&copy);
    let out = lint.output().expect("cfn-lint runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && stdout.contains("Duplicate StreamMapping"),
        "cfn-lint took a list whose mapping ids collide: {stdout}"
    );
}

// ---------------------------------------------------------------------------------------
// 2. The AWS tools (offline)
// ---------------------------------------------------------------------------------------

const CFN_LINT_VERSION: &str = "1.53.3";

fn venv_bin() -> PathBuf {
    let tools = std::env::var_os("KINARCH_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/kinarch")
        });
    tools.join("venv-sam/bin")
}

/// A program from the SAM tools venv; a missing one fails the test with what to do.
fn tool(name: &str) -> PathBuf {
    let path = venv_bin().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run bin/test, which installs the SAM tools venv \
         (aws-sam-cli, cfn-lint=={CFN_LINT_VERSION}) into {}",
        path.display(),
        venv_bin().parent().unwrap().display()
    );
    path
}

/// A command with offline AWS settings: dummy keys, a region, no telemetry, no IMDS.
fn aws_tool(program: PathBuf) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(repo_root())
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    cmd
}

fn run(mut cmd: Command) -> String {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    stdout
}

/// Expands the template for one set of parameter values, as CloudFormation would: SAM CLI's
/// AWS::LanguageExtensions processor (Fn::ForEach, Fn::If, Fn::Join/Split on known values),
/// then resources and outputs whose condition is false are dropped. The SAM transform is
/// not applied (the `AWS::Serverless::Function` stays).
const RESOLVE: &str = r#"
import json, sys
from samcli.lib.cfn_language_extensions.api import process_template
from samtranslator.yaml_helper import yaml_parse

with open(sys.argv[1]) as f:
    tpl = process_template(yaml_parse(f.read()), parameter_values=json.loads(sys.argv[2]))
conds = tpl.get("Conditions", {})

def ev(c):
    if isinstance(c, bool):
        return c
    (k, v), = c.items()
    if k == "Condition": return ev(conds[v])
    if k == "Fn::Not": return not ev(v[0])
    if k == "Fn::And": return all(ev(x) for x in v)
    if k == "Fn::Or": return any(ev(x) for x in v)
    if k == "Fn::Equals":
        if not all(isinstance(x, str) for x in v): raise SystemExit(f"unresolved: {c}")
        return v[0] == v[1]
    raise SystemExit(f"unknown condition function {k}")

for section in ("Resources", "Outputs"):
    items = tpl.get(section, {})
    for name in [n for n, r in items.items() if "Condition" in r and not ev(conds[r["Condition"]])]:
        del items[name]
print(json.dumps(tpl))
"#;

fn resolve_file(path: &Path, params: &Value) -> Value {
    let mut cmd = aws_tool(tool("python"));
    cmd.arg("-c").arg(RESOLVE).arg(path).arg(params.to_string());
    serde_json::from_str(&run(cmd)).expect("the resolved template is JSON")
}

fn resolved_template(params: &Value) -> Value {
    resolve_file(&template_path(), params)
}

/// A copy of the template whose `StreamArns` defaults to the three streams, without the
/// template's cfn-lint exemption for empty stream lists (neither tool takes parameter
/// values). The directory goes when the guard is dropped.
fn three_stream_copy() -> (TempDir, PathBuf) {
    stream_list_copy(&THREE_STREAMS)
}

/// A copy of the template whose `StreamArns` defaults to `streams`, as above.
fn stream_list_copy(streams: &[&str]) -> (TempDir, PathBuf) {
    let text = std::fs::read_to_string(template_path()).unwrap();
    let exemption = "Metadata:\n  cfn-lint:\n    config:\n      ignore_checks: [W1030, W1033]\n";
    assert!(
        text.contains(exemption),
        "the template's cfn-lint exemption moved"
    );
    let default = "  StreamArns:\n    Type: CommaDelimitedList\n";
    let at = text.find(default).expect("a StreamArns list parameter") + default.len();
    let empty = text[at..]
        .find("    Default: \"\"\n")
        .expect("StreamArns defaults to empty")
        + at;
    let mut copy = text[..empty].to_string();
    copy.push_str(&format!("    Default: \"{}\"\n", streams.join(",")));
    copy.push_str(&text[empty + "    Default: \"\"\n".len()..]);
    let copy = copy.replace(exemption, "");
    let dir = TempDir::new("template");
    let path = dir.0.join("template.yaml");
    std::fs::write(&path, copy).unwrap();
    (dir, path)
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory for this test thread.
    fn new(what: &str) -> TempDir {
        let dir = TempDir(std::env::temp_dir().join(format!(
            "kinarch-{what}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        )));
        let _ = std::fs::remove_dir_all(&dir.0);
        std::fs::create_dir_all(&dir.0).unwrap();
        dir
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn cfn_lint_passes() {
    let cfn_lint = tool("cfn-lint");
    let mut version = aws_tool(cfn_lint.clone());
    version.arg("--version");
    let version = run(version);
    assert!(
        version.trim().ends_with(CFN_LINT_VERSION),
        "cfn-lint must be {CFN_LINT_VERSION} (later versions stop expanding the SAM transform \
         and miss event-source errors), found {version:?}: run bin/test"
    );
    let mut lint = aws_tool(cfn_lint.clone());
    lint.arg(template_path());
    run(lint);

    let (_dir, three) = three_stream_copy();
    let mut lint = aws_tool(cfn_lint);
    lint.arg(&three);
    run(lint);
}

#[test]
fn sam_validate_lint_passes() {
    let mut cmd = aws_tool(tool("sam"));
    cmd.args(["validate", "--lint", "--template-file"])
        .arg(template_path())
        .args(["--region", "us-east-1"]);
    let out = run(cmd);
    assert!(out.contains("is a valid SAM Template"), "{out}");

    let (_dir, three) = three_stream_copy();
    let mut cmd = aws_tool(tool("sam"));
    cmd.args(["validate", "--lint", "--template-file"])
        .arg(&three)
        .args(["--region", "us-east-1"]);
    let out = run(cmd);
    assert!(out.contains("is a valid SAM Template"), "{out}");
}

/// What SAM deploys: transformed offline by samtranslator, the role is still only ours (a
/// SAM-generated role would carry AWSLambdaKinesisExecutionRole, kinesis on "*").
#[test]
fn sam_transform_keeps_least_privilege() {
    const TRANSFORM: &str = r#"
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:
    def load(self): return {}
    def get(self, name): return None

tpl = json.loads(sys.argv[1])
for res in tpl.get("Resources", {}).values():
    if res.get("Type") == "AWS::Serverless::Function":
        # a local CodeUri is what `sam build`/`sam package` replace; the transform needs S3
        res.setdefault("Properties", {})["CodeUri"] = "s3://placeholder/code.zip"
print(json.dumps(transform(tpl, {}, NoManagedPolicies())))
"#;
    let (params, expected) = deployments().swap_remove(0);
    let mut cmd = aws_tool(tool("python"));
    cmd.arg("-c")
        .arg(TRANSFORM)
        .arg(resolved_template(&params).to_string());
    let out = run(cmd);
    let cfn: Value = serde_json::from_str(&out).expect("transform output is JSON");

    let roles: Vec<_> = resources(&cfn)
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::IAM::Role")
        .collect();
    assert_eq!(
        roles.len(),
        1,
        "SAM generated another role: {:?}",
        roles.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    let (_, function) = only_resource(&cfn, "AWS::Lambda::Function");
    let props = function["Properties"].as_object().unwrap().clone();
    let (_, role) = function_role(&cfn, &props);
    check_role(role);
    assert_eq!(props["Runtime"], "provided.al2023");
    assert_eq!(props["Handler"], "bootstrap");
    assert_eq!(props["LoggingConfig"]["LogFormat"], "JSON");
    let violations = iam_violations(&cfn, &expected);
    assert!(
        violations.is_empty(),
        "IAM problems after the transform:\n  {}",
        violations.join("\n  ")
    );

    let (_, esm) = only_resource(&cfn, "AWS::Lambda::EventSourceMapping");
    let e = &esm["Properties"];
    assert_eq!(e["EventSourceArn"], ONE_STREAM);
    assert_eq!(
        e["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert_eq!(e["BisectBatchOnFunctionError"], true);
    let (queue_id, _) = only_resource(&cfn, "AWS::SQS::Queue");
    assert_eq!(
        e["DestinationConfig"],
        json!({"OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}})
    );
}

/// Issue 17: the replay-workers recipe the README links (`docs/replay-workers.yaml`) passes
/// cfn-lint, which also checks its state machine's Amazon States Language, and its AWS Batch
/// command is one kinarch runs: four children of an array job of size 4 (each with its
/// AWS_BATCH_JOB_ARRAY_INDEX) together replay every archived record once, in order per key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_workers_recipe_lints_and_its_batch_command_replays_everything_once() {
    use std::collections::BTreeMap;

    use kinarch_core::{ArchiveRecord, SequenceNumber};
    use kinarch_tests::{cli, kinesis, moto::Moto};

    let recipe = repo_root().join("docs/replay-workers.yaml");
    let mut lint = aws_tool(tool("cfn-lint"));
    lint.arg(&recipe);
    run(lint);

    let params = json!({
        "ArchiveStreamName": "orders",
        "TargetStreamName": "orders-replay",
        "Segments": "4",
        "WorkerImage": "kinarch:latest",
        "JobQueueArn": "arn:aws:batch:us-east-1:123456789012:job-queue/replay",
    });
    let tpl = resolve_file(&recipe, &params);
    let command: Vec<String> =
        tpl["Resources"]["ReplayJobDefinition"]["Properties"]["ContainerProperties"]["Command"]
            .as_array()
            .expect("the job definition has a command")
            .iter()
            .map(|arg| match arg {
                Value::String(s) => s.clone(),
                other => {
                    let name = other["Ref"].as_str().expect("a literal or a parameter");
                    params[name]
                        .as_str()
                        .expect("a parameter of the test")
                        .to_owned()
                }
            })
            .collect();
    assert_eq!(command[0], "reinject", "{command:?}");
    let map_command =
        tpl["Resources"]["ReplayStateMachine"]["Properties"]["Definition"].to_string();
    assert!(
        map_command.contains("'--segment', States.Format('{}/${Segments}', $.segment)"),
        "the Distributed Map gives each item its --segment I/N: {map_command}"
    );

    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let kinesis_client = aws_sdk_kinesis::Client::new(&sdk);
    let mut expected: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    let records: Vec<ArchiveRecord> = (0..60u64)
        .map(|i| {
            let key = format!("customer-{}", i % 9);
            let data = format!("order {i}").into_bytes();
            expected.entry(key.clone()).or_default().push(data.clone());
            ArchiveRecord::received(
                key,
                SequenceNumber::parse(&(i * 13 + 5).to_string()).unwrap(),
                "shardId-000000000000".into(),
                1_714_564_800.0 + i as f64,
                data,
            )
        })
        .collect();
    kinarch_tests::dynamo::archived_stream(&sdk, "orders", 1, &records, chrono::Utc::now()).await;
    kinesis::create_stream(&kinesis_client, "orders-replay", 2).await;
    let children = (0..4).map(|index| {
        let mut env = moto.env();
        env.push(("AWS_BATCH_JOB_ARRAY_INDEX".into(), index.to_string()));
        let mut child = cli::command_with_env(&env);
        child.args(&command);
        cli::run_command(child, None)
    });
    for child in futures::future::join_all(children).await {
        child.ok();
    }
    let mut replayed: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for r in kinesis::read_all(&kinesis_client, "orders-replay").await {
        replayed
            .entry(r.partition_key.clone())
            .or_default()
            .push(r.data.clone());
    }
    assert_eq!(
        replayed, expected,
        "every record once, each key's records in sequence order"
    );
}

// ---------------------------------------------------------------------------------------
// 3. Deploying as the README says
// ---------------------------------------------------------------------------------------

/// Issue 29: `sam validate` as `sam build` suggests it, with no flag: `samconfig.toml` turns
/// on SAM CLI's expansion of Fn::ForEach (without it: "All 'Resources' must be Objects"),
/// and holds the one parameter set `sam build` and `sam deploy` both read.
#[test]
fn sam_validate_passes_with_the_committed_samconfig() {
    let mut cmd = aws_tool(tool("sam"));
    cmd.args(["validate", "--region", "us-east-1"]);
    let out = run(cmd);
    assert!(out.contains("is a valid SAM Template"), "{out}");

    const CONFIG: &str = r#"
import json, sys, tomllib
print(json.dumps(tomllib.load(open(sys.argv[1], "rb"))))
"#;
    let mut cmd = aws_tool(tool("python"));
    cmd.arg("-c")
        .arg(CONFIG)
        .arg(repo_root().join("samconfig.toml"));
    let config: Value = serde_json::from_str(&run(cmd)).unwrap();
    let global = &config["default"]["global"]["parameters"];
    assert_eq!(global["language_extensions"], true, "{config}");
    let overrides = strings(&global["parameter_overrides"]).join(" ");
    assert!(
        overrides.contains("Architecture=x86_64"),
        "the architecture both commands use: {overrides}"
    );
    // A command's own parameter_overrides would replace the global list for it alone:
    // sam build and sam deploy could then disagree on Architecture.
    for (command, section) in config["default"].as_object().unwrap() {
        if command != "global" {
            assert!(
                section["parameters"].get("parameter_overrides").is_none(),
                "[default.{command}.parameters] has its own parameter_overrides"
            );
        }
    }
    let deploy = &config["default"]["deploy"]["parameters"];
    let capabilities = strings(&deploy["capabilities"]).join(" ");
    assert!(
        capabilities.contains("CAPABILITY_IAM") && capabilities.contains("CAPABILITY_AUTO_EXPAND"),
        "the role and the two transforms: {capabilities}"
    );
}

/// The GLIBC_x.y versions an ELF file needs, highest last.
fn glibc_needs(binary: &Path) -> Vec<(u32, u32)> {
    let mut readelf = Command::new("readelf");
    readelf.args(["--version-info", "--wide"]).arg(binary);
    let mut versions: Vec<(u32, u32)> = run(readelf)
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let (major, minor) = v.split_once('.')?;
            Some((major.parse().ok()?, minor.split('.').next()?.parse().ok()?))
        })
        .collect();
    versions.sort_unstable();
    versions.dedup();
    versions
}

/// The ELF machine of a file (EM_X86_64 = 62, EM_AARCH64 = 183).
fn elf_machine(binary: &Path) -> u16 {
    let bytes = std::fs::read(binary).unwrap();
    assert_eq!(
        &bytes[..4],
        b"\x7fELF",
        "{} is not an ELF file",
        binary.display()
    );
    u16::from_le_bytes([bytes[18], bytes[19]])
}

/// The value of a `name:   value` line of bin/package's report.
fn report_line<'a>(report: &'a str, name: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} line in:\n{report}"))
        .trim()
}

/// Issue 29: `sam build` as the README runs it (cargo-lambda and zig from the tools venv, no
/// Docker) builds the template into an x86_64 bootstrap that runs on provided.al2023, and it
/// is the very binary `bin/package` zips (same crate features, profile and target), whose
/// template for `aws cloudformation package` points at that zip. Both build into this test's
/// own Cargo target directory: with a warm target, seconds.
#[test]
fn sam_build_makes_the_binary_bin_package_zips() {
    let target_dir = std::env::current_exe()
        .expect("test binary path")
        .ancestors()
        .nth(3)
        .expect("<target>/<profile>/deps/<test>")
        .to_path_buf();
    let out = TempDir::new("sam-build");
    let build_tool = |program: PathBuf| {
        let mut cmd = aws_tool(program);
        kinarch_tests::without_cargo_test_env(&mut cmd);
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![venv_bin()];
        paths.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(paths).unwrap())
            .env("CARGO_TARGET_DIR", &target_dir);
        cmd
    };

    let mut sam = build_tool(tool("sam"));
    sam.arg("build")
        .arg("--build-dir")
        .arg(out.0.join("build"))
        .arg("--cache-dir")
        .arg(out.0.join("cache"));
    let log = run(sam);
    assert!(log.contains("Build Succeeded"), "{log}");
    let built_template = out.0.join("build/template.yaml");
    assert!(built_template.is_file(), "{log}");
    let bootstrap = out.0.join("build/ArchiverFunction/bootstrap");
    assert_eq!(
        elf_machine(&bootstrap),
        62,
        "sam build made no x86_64 binary"
    );
    let glibc = glibc_needs(&bootstrap);
    assert!(
        glibc.last().is_some_and(|&v| v <= (2, 34)),
        "the bootstrap needs {glibc:?}; provided.al2023 has glibc 2.34"
    );

    let package = || {
        let mut cmd = build_tool(repo_root().join("bin/package"));
        cmd.env_remove("CARGO");
        cmd
    };
    let mut check = package();
    check.arg("--check").arg(&bootstrap);
    let sam_report = run(check);
    let mut zip = package();
    zip.args(["--arch", "x86_64"]);
    let package_report = run(zip);
    assert_eq!(
        report_line(&sam_report, "sha256"),
        report_line(&package_report, "sha256"),
        "sam build and bin/package made different binaries:\n{sam_report}\n{package_report}"
    );
    assert_eq!(
        report_line(&package_report, "max glibc"),
        report_line(&sam_report, "max glibc")
    );

    // The zip deploys without SAM: its template points at it, for the one architecture.
    let lambda_dir = target_dir.join("lambda-x86_64");
    let packaged = lambda_dir.join("template.yaml");
    assert_eq!(
        PathBuf::from(report_line(&package_report, "template")),
        packaged
    );
    let text = std::fs::read_to_string(&packaged).unwrap();
    let tpl = yaml_to_json(&serde_yaml_ng::from_str(&text).unwrap());
    let (_, function) = only_resource(&tpl, "AWS::Serverless::Function");
    let code = function["Properties"]["CodeUri"]
        .as_str()
        .expect("a local CodeUri");
    assert_eq!(
        lambda_dir.join(code),
        PathBuf::from(report_line(&package_report, "zip")),
        "the packaged template's CodeUri is bin/package's zip"
    );
    assert!(
        function.get("Metadata").is_none(),
        "no SAM build method left"
    );
    assert_eq!(
        tpl["Parameters"]["Architecture"]["AllowedValues"],
        json!(["x86_64"])
    );
    let mut lint = aws_tool(tool("cfn-lint"));
    lint.arg(&packaged);
    run(lint);

    // Packaging it uploads the zip as it is (not the source tree), and the packaged template
    // names that object: SAM CLI's package step, which `aws cloudformation package` shares,
    // against the emulator's S3.
    const BUCKET: &str = r#"
import boto3, hashlib, json, sys
s3 = boto3.client("s3")
if sys.argv[1] == "create":
    s3.create_bucket(Bucket=sys.argv[2])
else:
    objects = s3.list_objects_v2(Bucket=sys.argv[2]).get("Contents", [])
    print(json.dumps({o["Key"]: hashlib.sha256(s3.get_object(Bucket=sys.argv[2], Key=o["Key"])["Body"].read()).hexdigest() for o in objects}))
"#;
    let moto = kinarch_tests::moto::Moto::start();
    let with_moto = |mut cmd: Command| {
        cmd.envs(moto.env());
        cmd
    };
    let mut create = with_moto(aws_tool(tool("python")));
    create.args(["-c", BUCKET, "create", "kinarch-artifacts"]);
    run(create);
    let output_template = out.0.join("packaged.yaml");
    let mut sam_package = with_moto(aws_tool(tool("sam")));
    sam_package
        .args(["package", "--language-extensions", "--template-file"])
        .arg(&packaged)
        .args(["--s3-bucket", "kinarch-artifacts", "--output-template-file"])
        .arg(&output_template);
    run(sam_package);
    let mut objects = with_moto(aws_tool(tool("python")));
    objects.args(["-c", BUCKET, "list", "kinarch-artifacts"]);
    let objects: Value = serde_json::from_str(&run(objects)).unwrap();
    let mut zip_sha = Command::new("sha256sum");
    zip_sha.arg(report_line(&package_report, "zip"));
    let zip_sha = run(zip_sha).split_whitespace().next().unwrap().to_owned();
    let objects = objects.as_object().unwrap();
    assert_eq!(objects.len(), 1, "one object, the zip: {objects:?}");
    let (key, sha) = objects.iter().next().unwrap();
    assert_eq!(
        sha,
        &json!(zip_sha),
        "the uploaded object is bin/package's zip"
    );
    let uploaded = std::fs::read_to_string(&output_template).unwrap();
    assert!(
        uploaded.contains(&format!("CodeUri: s3://kinarch-artifacts/{key}")),
        "{uploaded}"
    );
}

/// Issue 29: the README's install and deploy commands are the ones tested here.
#[test]
fn readme_deploys_as_tested() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    assert!(readme.contains("cargo install --locked --path crates/cli"));
    assert!(
        !readme.contains("cargo install --path"),
        "cargo install without --locked ignores Cargo.lock"
    );
    let deploy = readme
        .split("## Deploy with SAM")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Deploy with SAM section");
    for command in [
        "\nsam build ",
        "\nsam deploy ",
        "\nbin/package --arch x86_64 ",
        "\naws cloudformation package ",
        "CAPABILITY_AUTO_EXPAND",
    ] {
        assert!(
            deploy.contains(command),
            "the deploy section lacks {command:?}"
        );
    }
}

/// Issue 29: the replay workers' image can run the `kinarch` binary (glibc >= 2.34), and the
/// recipe says how to build both.
#[test]
fn replay_workers_image_can_run_the_binary() {
    let recipe = std::fs::read_to_string(repo_root().join("docs/replay-workers.yaml")).unwrap();
    assert!(
        recipe.contains("FROM public.ecr.aws/amazonlinux/amazonlinux:2023"),
        "an image with glibc 2.34 (Amazon Linux 2023)"
    );
    assert!(
        !recipe.contains("FROM scratch"),
        "a scratch image has no glibc"
    );
    assert!(recipe.contains("cargo lambda build --release --locked --package kinarch-cli"));
}
