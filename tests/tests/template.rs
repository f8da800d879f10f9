//! Checks of the SAM template (`template.yaml`).
//!
//! 1. Structure and least-privilege IAM, from the YAML itself (CloudFormation short tags
//!    such as `!Ref` are turned into their long JSON form first).
//! 2. cfn-lint 1.53.3, `sam validate --lint`, and the SAM transform (run offline by
//!    samtranslator), all from the tools venv that `bin/test` installs. A missing venv is a
//!    failure that says to run `bin/test`, never a skip.

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
    // The function (crates/core).
    ("kinesis:ListTagsForStream", "function: streams.rs reads the archive config from tags"),
    ("dynamodb:BatchWriteItem", "function: writer.rs writes ALL-mode archives"),
    ("dynamodb:PutItem", "function: writer.rs conditional puts for LATEST-mode archives"),
    (
        "dynamodb:DescribeTable",
        "function: writer.rs names a key schema that does not fit after a ValidationException",
    ),
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
    matches!(service.as_str(), "kinesis" | "dynamodb" | "sqs")
}

/// Everything wrong with the template's IAM; empty when it is least privilege.
fn iam_violations(tpl: &Value) -> Vec<String> {
    let mut v = Vec::new();
    let allowed: Vec<String> = ALLOWED_ACTIONS
        .iter()
        .map(|(a, _)| a.to_ascii_lowercase())
        .collect();
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
                if r == "*" || r.as_str().is_some_and(|s| s.contains('*')) {
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
        for r in &targets {
            if services.contains("kinesis") && *r != json!({"Ref": "StreamArn"}) {
                v.push(format!(
                    "{at}: kinesis resource {r} is not the StreamArn parameter"
                ));
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
            if services.contains("dynamodb")
                && let Err(why) = check_archive_table_arn(r)
            {
                v.push(format!("{at}: dynamodb resource {r}: {why}"));
            }
        }
    }
    for (action, why) in ALLOWED_ACTIONS {
        if !granted.contains(&action.to_ascii_lowercase()) {
            v.push(format!("{action} is not granted, but it is needed ({why})"));
        }
    }
    v
}

/// The DynamoDB resource must be `...:table/<stream name>-archive-*` with the stream name cut
/// from the StreamArn parameter.
fn check_archive_table_arn(r: &Value) -> Result<(), String> {
    let sub = &r["Fn::Sub"];
    let (pattern, vars) = match sub {
        Value::Array(items) if items.len() == 2 => (items[0].as_str(), items[1].clone()),
        Value::String(s) => (Some(s.as_str()), json!({})),
        _ => return Err("not an Fn::Sub".into()),
    };
    let pattern = pattern.ok_or("the Fn::Sub pattern is not a string")?;
    if !pattern
        .starts_with("arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/")
    {
        return Err(format!(
            "{pattern} is not a table ARN of this partition, region and account"
        ));
    }
    let table = pattern.rsplit_once(":table/").map(|(_, t)| t).unwrap_or("");
    let var = table
        .strip_prefix("${")
        .and_then(|t| t.strip_suffix("}-archive-*"))
        .ok_or_else(|| format!("table part {table:?} is not ${{<stream name>}}-archive-*"))?;
    let expected = json!({"Fn::Select": [1, {"Fn::Split": ["/", {"Ref": "StreamArn"}]}]});
    let actual = &vars[var];
    // `1` may be written as a number or a string.
    let normalised = match actual["Fn::Select"].as_array() {
        Some(sel) if sel.len() == 2 && number(&sel[0]) == Some(1) => {
            json!({"Fn::Select": [1, sel[1].clone()]})
        }
        _ => actual.clone(),
    };
    if normalised != expected {
        return Err(format!(
            "${{{var}}} is {actual}, not the stream name cut from StreamArn"
        ));
    }
    Ok(())
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
    assert_eq!(
        managed,
        vec![json!({"Fn::Sub": BASIC_EXECUTION_ROLE})],
        "the only managed policy is AWSLambdaBasicExecutionRole (CloudWatch Logs)"
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
    assert_eq!(number(&p["BatchSize"]["Default"]), Some(100));
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
    assert_eq!(tpl["Transform"], "AWS::Serverless-2016-10-31");
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

    // CodeUri is the workspace root, whose manifest holds [profile.release] and the lambda
    // crate, which has the `bootstrap` bin.
    let code_uri = props["CodeUri"].as_str().expect("CodeUri is a local path");
    let code_dir = repo_root()
        .join(code_uri)
        .canonicalize()
        .expect("CodeUri exists");
    assert_eq!(code_dir, repo_root(), "CodeUri must be the workspace root");
    let root_manifest = std::fs::read_to_string(code_dir.join("Cargo.toml")).unwrap();
    assert!(root_manifest.contains("[workspace]") && root_manifest.contains("crates/lambda"));
    assert!(root_manifest.contains("[profile.release]"));
    let lambda_manifest =
        std::fs::read_to_string(code_dir.join("crates/lambda/Cargo.toml")).unwrap();
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

#[test]
fn kinesis_event_reports_partial_failures_and_has_a_failure_queue() {
    let tpl = load_template();
    let (_, function) = only_resource(&tpl, "AWS::Serverless::Function");
    let events = function["Properties"]["Events"]
        .as_object()
        .expect("Events");
    assert_eq!(events.len(), 1, "one event source");
    let event = events.values().next().unwrap();
    assert_eq!(event["Type"], "Kinesis");
    let e = &event["Properties"];
    assert_eq!(e["Stream"], json!({"Ref": "StreamArn"}));
    assert_eq!(e["StartingPosition"], json!({"Ref": "StreamPosition"}));
    assert_eq!(e["BatchSize"], json!({"Ref": "BatchSize"}));
    assert_eq!(
        e["MaximumRetryAttempts"],
        json!({"Ref": "MaximumRetryAttempts"})
    );
    assert_eq!(e["BisectBatchOnFunctionError"], true);
    assert_eq!(
        e["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );

    let (queue_id, _) = only_resource(&tpl, "AWS::SQS::Queue");
    assert_eq!(
        e["DestinationConfig"]["OnFailure"]["Destination"],
        json!({"Fn::GetAtt": [queue_id, "Arn"]})
    );

    // Outputs: function name and ARN, queue URL and ARN.
    let (function_id, _) = only_resource(&tpl, "AWS::Serverless::Function");
    let outputs: Vec<Value> = tpl["Outputs"]
        .as_object()
        .expect("Outputs")
        .values()
        .map(|o| o["Value"].clone())
        .collect();
    for wanted in [
        json!({"Ref": function_id}),
        json!({"Fn::GetAtt": [function_id, "Arn"]}),
        json!({"Ref": queue_id}),
        json!({"Fn::GetAtt": [queue_id, "Arn"]}),
    ] {
        assert!(outputs.contains(&wanted), "no output with value {wanted}");
    }
}

#[test]
fn iam_is_least_privilege() {
    let tpl = load_template();
    let (_, function) = only_resource(&tpl, "AWS::Serverless::Function");
    let props = function_properties(&tpl, function);
    assert!(
        props.get("Policies").is_none(),
        "permissions belong in the explicit role, not in SAM Policies"
    );
    let (_, role) = function_role(&tpl, &props);
    check_role(role);
    let violations = iam_violations(&tpl);
    assert!(
        violations.is_empty(),
        "IAM problems:\n  {}",
        violations.join("\n  ")
    );
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

/// The IAM check catches what it is meant to catch.
#[test]
fn iam_check_rejects_broad_grants() {
    let tpl = load_template();
    let (role_id, _) = only_resource(&tpl, "AWS::IAM::Role");
    type Mutation = Box<dyn Fn(&mut Vec<Value>)>;
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
    for (what, mutate) in mutations {
        let mut t = tpl.clone();
        mutate(role_statements(&mut t, role_id));
        assert!(
            !iam_violations(&t).is_empty(),
            "the IAM check missed: {what}"
        );
    }
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
    let mut lint = aws_tool(cfn_lint);
    lint.arg(template_path());
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

with open(sys.argv[1]) as f:
    tpl = yaml_parse(f.read())
for res in tpl.get("Resources", {}).values():
    if res.get("Type") == "AWS::Serverless::Function":
        # a local CodeUri is what `sam build`/`sam package` replace; the transform needs S3
        res.setdefault("Properties", {})["CodeUri"] = "s3://placeholder/code.zip"
print(json.dumps(transform(tpl, {}, NoManagedPolicies())))
"#;
    let mut cmd = aws_tool(tool("python"));
    cmd.arg("-c").arg(TRANSFORM).arg(template_path());
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
    let violations = iam_violations(&cfn);
    assert!(
        violations.is_empty(),
        "IAM problems after the transform:\n  {}",
        violations.join("\n  ")
    );

    let (_, esm) = only_resource(&cfn, "AWS::Lambda::EventSourceMapping");
    let e = &esm["Properties"];
    assert_eq!(e["EventSourceArn"], json!({"Ref": "StreamArn"}));
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
