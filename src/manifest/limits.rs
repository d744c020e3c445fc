//! AWS's rules that the manifest alone can break, checked before any API call (moto checks
//! almost none of them, so without this a mistake would fail half-way through an `up` on AWS):
//! name lengths and characters per kind (env prefix included), S3 bucket names, tags, schedule
//! expressions, email endpoints. One table of name rules, one function per other rule.

use serde_json::Value;

/// A kind's name rule: the longest name AWS takes and the characters it allows.
struct NameRule {
    kind: &'static str,
    what: &'static str,
    max: usize,
    allowed: fn(char) -> bool,
    chars: &'static str,
}

fn iam(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
}
fn word(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-".contains(c)
}
fn rule_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._-".contains(c)
}
fn log_group(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_-/.#".contains(c)
}
fn repository(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || "._/-".contains(c)
}

const NAMES: &[NameRule] = &[
    NameRule {
        kind: "iam_role",
        what: "IAM role names",
        max: 64,
        allowed: iam,
        chars: "letters, digits and +=,.@_-",
    },
    NameRule {
        kind: "iam_user",
        what: "IAM user names",
        max: 64,
        allowed: iam,
        chars: "letters, digits and +=,.@_-",
    },
    NameRule {
        kind: "iam_group",
        what: "IAM group names",
        max: 128,
        allowed: iam,
        chars: "letters, digits and +=,.@_-",
    },
    NameRule {
        kind: "iam_policy",
        what: "IAM policy names",
        max: 128,
        allowed: iam,
        chars: "letters, digits and +=,.@_-",
    },
    NameRule {
        kind: "sfn_state_machine",
        what: "state machine names",
        max: 80,
        allowed: word,
        chars: "letters, digits, - and _",
    },
    NameRule {
        kind: "events_rule",
        what: "EventBridge rule names",
        max: 64,
        allowed: rule_name,
        chars: "letters, digits, ., - and _",
    },
    NameRule {
        kind: "events_connection",
        what: "EventBridge connection names",
        max: 64,
        allowed: rule_name,
        chars: "letters, digits, ., - and _",
    },
    NameRule {
        kind: "sns_topic",
        what: "SNS topic names",
        max: 256,
        allowed: word,
        chars: "letters, digits, - and _",
    },
    NameRule {
        kind: "sqs_queue",
        what: "SQS queue names",
        max: 80,
        allowed: word,
        chars: "letters, digits, - and _",
    },
    NameRule {
        kind: "dynamodb_table",
        what: "DynamoDB table names",
        max: 255,
        allowed: rule_name,
        chars: "letters, digits, ., - and _",
    },
    NameRule {
        kind: "logs_log_group",
        what: "log group names",
        max: 512,
        allowed: log_group,
        chars: "letters, digits and _-/.#",
    },
    NameRule {
        kind: "ecr_repository",
        what: "ECR repository names",
        max: 256,
        allowed: repository,
        chars: "lowercase letters, digits and ._/-",
    },
    NameRule {
        kind: "lambda_function",
        what: "Lambda function names",
        max: 64,
        allowed: word,
        chars: "letters, digits, - and _",
    },
    NameRule {
        kind: "pipes_pipe",
        what: "pipe names",
        max: 64,
        allowed: rule_name,
        chars: "letters, digits, ., - and _",
    },
];

/// A rule broken: the message names the value and the AWS limit with its number; `attr` is the
/// attribute path it is about (`statement[1].Action`) where the rule knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Breach {
    pub attr: Option<String>,
    pub message: String,
}

impl From<String> for Breach {
    fn from(message: String) -> Breach {
        Breach {
            attr: None,
            message,
        }
    }
}

impl Breach {
    fn at(attr: String, message: String) -> Breach {
        Breach {
            attr: Some(attr),
            message,
        }
    }
}

/// Every rule `attrs` (resolved, env prefix included) breaks. `env` is the env in use, for
/// advice on long prefixes.
pub fn check(kind: &str, attrs: &Value, env: &str) -> Vec<Breach> {
    let mut out: Vec<Breach> = Vec::new();
    if let (Some(rule), Some(name)) = (NAMES.iter().find(|r| r.kind == kind), known(&attrs["name"]))
    {
        name_rule(rule, &name, env, &mut out);
    }
    if kind == "s3_bucket" {
        if let Some(name) = known(&attrs["name"]) {
            bucket_name(&name, env, &mut out);
        }
    }
    if let Some(tags) = attrs.get("tags").and_then(|t| t.as_object()) {
        tag_rules(tags, &mut out);
    }
    if let Some(e) = known(&attrs["schedule_expression"]) {
        if let Err(m) = schedule(&e) {
            out.push(m.into());
        }
    }
    if kind == "sqs_queue" {
        sqs_queue(attrs, &mut out);
    }
    if kind == "dynamodb_table" {
        dynamodb_table(attrs, &mut out);
    }
    if kind == "iam_policy" {
        if let Some(statements) = attrs["statement"].as_array() {
            policy(statements, &mut out);
        }
    }
    if kind == "sns_subscription" {
        email_subscription(attrs, &mut out);
    }
    out
}

/// A value known now: values known only after apply, and placeholders for unset variables,
/// wait until known.
fn known(v: &Value) -> Option<String> {
    v.as_str()
        .filter(|s| !s.contains(super::refs::UNKNOWN_PREFIX) && !s.contains("(unset: "))
        .map(str::to_string)
}

/// SQS's ranges of a queue's times.
fn sqs_queue(attrs: &Value, out: &mut Vec<Breach>) {
    for (attr, max, min) in [
        ("visibility_timeout_seconds", 43_200, 0),
        ("message_retention_seconds", 1_209_600, 60),
        ("delay_seconds", 900, 0),
        ("receive_wait_time_seconds", 20, 0),
    ] {
        if let Some(v) = attrs[attr].as_u64().filter(|v| *v > max || *v < min) {
            out.push(format!("{attr} {v} is outside SQS's range ({min} to {max})").into());
        }
    }
}

/// DynamoDB's key types, key names and billing modes.
fn dynamodb_table(attrs: &Value, out: &mut Vec<Breach>) {
    if !matches!(attrs["hash_key_type"].as_str(), Some("S" | "N" | "B")) {
        out.push(
            format!(
                "hash_key_type {} is not S, N or B (DynamoDB's key types)",
                attrs["hash_key_type"]
            )
            .into(),
        );
    }
    if let Some(k) = known(&attrs["hash_key"]).filter(|k| k.is_empty() || k.len() > 255) {
        out.push(format!("hash_key {k:?}: DynamoDB key names are 1 to 255 bytes").into());
    }
    if !matches!(
        attrs["billing_mode"].as_str(),
        Some("PAY_PER_REQUEST" | "PROVISIONED")
    ) {
        out.push(
            format!(
                "billing_mode {} is not PAY_PER_REQUEST or PROVISIONED",
                attrs["billing_mode"]
            )
            .into(),
        );
    }
}

/// An email subscription's endpoint is an email address.
fn email_subscription(attrs: &Value, out: &mut Vec<Breach>) {
    let protocol = attrs["protocol"].as_str().unwrap_or_default();
    if !protocol.starts_with("email") {
        return;
    }
    if let Some(to) = known(&attrs["endpoint"]).filter(|to| !is_email(to)) {
        let message = format!("endpoint {to:?} is not an email address (protocol {protocol})");
        out.push(message.into());
    }
}

fn env_advice(name: &str, max: usize, env: &str) -> String {
    if env == super::DEFAULT_ENV || !name.starts_with(&format!("{env}-")) {
        return String::new();
    }
    let base = name.len() - env.len() - 1; // the name without "<env>-"
    let room = max as i64 - base as i64 - 1;
    if room >= 1 {
        format!(
            " (with env `{env}`: an env of at most {room} characters fits, or shorten the name)"
        )
    } else {
        format!(" (the name is too long even without env `{env}`)")
    }
}

fn name_rule(r: &NameRule, name: &str, env: &str, out: &mut Vec<Breach>) {
    if name.is_empty() || name.chars().count() > r.max {
        out.push(
            format!(
                "name {name:?} has {} characters; {} take 1 to {}{}",
                name.chars().count(),
                r.what,
                r.max,
                env_advice(name, r.max, env)
            )
            .into(),
        );
    }
    if let Some(c) = name.chars().find(|c| !(r.allowed)(*c)) {
        out.push(format!("name {name:?} has {c:?}; {} take only {}", r.what, r.chars).into());
    }
}

fn bucket_name(name: &str, env: &str, out: &mut Vec<Breach>) {
    let rule = "S3 bucket names are 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit";
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    let ends_ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !(3..=63).contains(&name.len()) {
        out.push(
            format!(
                "bucket name {name:?} has {} characters; {rule}{}",
                name.len(),
                env_advice(name, 63, env)
            )
            .into(),
        );
    } else if !chars_ok
        || !ends_ok
        || name.contains("..")
        || name.parse::<std::net::Ipv4Addr>().is_ok()
        || name.starts_with("xn--")
    {
        out.push(format!("bucket name {name:?}: {rule}, with no two dots in a row, not shaped like an IP address, not starting with xn--").into());
    }
}

fn tag_rules(tags: &serde_json::Map<String, Value>, out: &mut Vec<Breach>) {
    if tags.len() > 50 {
        out.push(
            format!(
                "{} tags (the stack's, deploy's and the resource's); AWS allows 50 per resource",
                tags.len()
            )
            .into(),
        );
    }
    for (k, v) in tags {
        let v = v.as_str().unwrap_or_default();
        if k.is_empty() || k.chars().count() > 128 {
            out.push(
                format!(
                    "tag key {k:?} has {} characters; tag keys are 1 to 128",
                    k.chars().count()
                )
                .into(),
            );
        }
        if v.chars().count() > 256 {
            out.push(
                format!(
                    "tag {k:?} has a value of {} characters; tag values are at most 256",
                    v.chars().count()
                )
                .into(),
            );
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            out.push(format!("tag key {k:?}: the aws: prefix is reserved for AWS").into());
        }
    }
}

/// A managed policy: at most 6,144 characters without white space, and every statement in
/// IAM's shape (Effect, Action or NotAction as `service:Action` patterns, Resource or
/// NotResource as ARNs or `*`).
fn policy(statements: &[Value], out: &mut Vec<Breach>) {
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string();
    let size = doc.chars().filter(|c| !c.is_whitespace()).count();
    if size > 6144 {
        out.push(format!("the policy document has {size} characters without white space; managed policies allow 6,144").into());
    }
    for (i, st) in statements.iter().enumerate() {
        statement(i, st, out);
    }
}

/// The fields a policy statement may have.
const STATEMENT_KEYS: &[&str] = &[
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
    "Principal",
    "NotPrincipal",
];

/// One statement of a policy: its fields, Effect, actions and resources.
fn statement(i: usize, st: &Value, out: &mut Vec<Breach>) {
    let at = format!("statement {}", i + 1);
    let keys = st.as_object().into_iter().flat_map(|o| o.keys());
    for k in keys.filter(|k| !STATEMENT_KEYS.contains(&k.as_str())) {
        let known: Vec<String> = STATEMENT_KEYS.iter().map(|k| format!("`{k}`")).collect();
        let message = format!("unknown field `{k}`, expected one of {}", known.join(", "));
        out.push(Breach::at(format!("statement[{i}].{k}"), message));
    }
    if !matches!(st["Effect"].as_str(), Some("Allow" | "Deny")) {
        let effect = st["Effect"].as_str().map(|e| format!("{e:?}"));
        let effect = effect.unwrap_or("missing".into());
        let message = format!("{at}: Effect is {effect}, not Allow or Deny");
        out.push(Breach::at(format!("statement[{i}].Effect"), message));
    }
    let list = |k: &str| -> Option<Vec<String>> {
        match &st[k] {
            Value::String(s) => Some(vec![s.clone()]),
            Value::Array(a) => Some(
                a.iter()
                    .map(|v| v.as_str().unwrap_or("").to_string())
                    .collect(),
            ),
            _ => None,
        }
    };
    let Some(actions) = list("Action").or_else(|| list("NotAction")) else {
        out.push(Breach::at(
            format!("statement[{i}]"),
            format!("{at}: no Action (or NotAction)"),
        ));
        return resources(
            i,
            &at,
            list("Resource").or_else(|| list("NotResource")),
            out,
        );
    };
    for a in actions.iter().filter(|a| !action_pattern(a)) {
        let message = format!(
            "{at}: action {a:?} is not service:Action (e.g. states:StartExecution, s3:Get*)"
        );
        out.push(Breach::at(format!("statement[{i}].Action"), message));
    }
    resources(
        i,
        &at,
        list("Resource").or_else(|| list("NotResource")),
        out,
    );
}

/// A statement's resources: each `*` or an ARN.
fn resources(i: usize, at: &str, resources: Option<Vec<String>>, out: &mut Vec<Breach>) {
    let Some(resources) = resources else {
        let message = format!("{at}: no Resource (or NotResource)");
        out.push(Breach::at(format!("statement[{i}]"), message));
        return;
    };
    let unknown = |r: &&String| r.contains(super::refs::UNKNOWN_PREFIX);
    for r in resources.iter().filter(|r| !unknown(r) && !arn_pattern(r)) {
        let message = format!(
            "{at}: resource {r:?} is neither * nor an ARN (arn:partition:service:region:account:resource)"
        );
        out.push(Breach::at(format!("statement[{i}].Resource"), message));
    }
}

fn action_pattern(a: &str) -> bool {
    if a == "*" {
        return true;
    }
    let Some((service, action)) = a.split_once(':') else {
        return false;
    };
    !service.is_empty()
        && service
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !action.is_empty()
        && action
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
}

fn arn_pattern(r: &str) -> bool {
    r == "*" || (r.starts_with("arn:") && r.splitn(6, ':').count() == 6)
}

/// `rate(5 minutes)` or `cron(0 12 * * ? *)`, as EventBridge reads them.
pub fn schedule(e: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "schedule_expression {e:?} {why}; write rate(5 minutes) or cron(0 12 * * ? *)"
        ))
    };
    if let Some(body) = e.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
        let mut parts = body.split_whitespace();
        let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return bad("needs a number and a unit");
        };
        let Ok(n) = n.parse::<u64>() else {
            return bad("needs a whole number");
        };
        let units: &[&str] = if n == 1 {
            &["minute", "hour", "day"]
        } else {
            &["minutes", "hours", "days"]
        };
        if n == 0 || !units.contains(&unit) {
            return bad(&format!(
                "needs a positive number and one of {}",
                units.join(", ")
            ));
        }
        return Ok(());
    }
    if let Some(body) = e.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
        let fields: Vec<&str> = body.split_whitespace().collect();
        if fields.len() != 6 {
            return bad(&format!(
                "has {} fields; EventBridge cron expressions have 6 (minutes hours day-of-month month day-of-week year)",
                fields.len()
            ));
        }
        if fields[2] != "?" && fields[4] != "?" {
            return bad("gives both day-of-month and day-of-week; one of them must be ?");
        }
        return Ok(());
    }
    bad("is neither rate(...) nor cron(...)")
}

fn is_email(s: &str) -> bool {
    let Some((user, domain)) = s.split_once('@') else {
        return false;
    };
    !user.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages of the rules broken (what these tests read).
    fn check(kind: &str, attrs: &Value, env: &str) -> Vec<String> {
        super::check(kind, attrs, env)
            .into_iter()
            .map(|b| b.message)
            .collect()
    }
    use serde_json::json;

    #[test]
    fn names_tags_schedules_and_emails() {
        let long = "r".repeat(80);
        let e = check("iam_role", &json!({"name": long}), "default");
        assert_eq!(
            e,
            [
                "name \"rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr\" has 80 characters; IAM role names take 1 to 64"
            ]
        );
        let e = check(
            "iam_role",
            &json!({"name": format!("pr-12345-{}", "r".repeat(60))}),
            "pr-12345",
        );
        assert!(
            e[0].contains(
                "(with env `pr-12345`: an env of at most 3 characters fits, or shorten the name)"
            ),
            "{e:?}"
        );
        assert!(
            check("sfn_state_machine", &json!({"name": "a b"}), "default")[0].contains("has ' '")
        );
        assert!(
            check("s3_bucket", &json!({"name": "My_Bucket"}), "default")[0].contains("lowercase")
        );
        assert!(
            check("s3_bucket", &json!({"name": "192.168.1.1"}), "default")[0]
                .contains("IP address")
        );
        assert!(check("s3_bucket", &json!({"name": "ok-bucket.name"}), "default").is_empty());
        let many: serde_json::Map<String, Value> =
            (0..60).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(
            check("iam_role", &json!({"name": "r", "tags": many}), "default")[0]
                .contains("60 tags")
        );
        let e = check(
            "iam_role",
            &json!({"name": "r", "tags": {"aws:x": "1", "k": "v".repeat(300)}}),
            "default",
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            schedule("rate(5 minutes)").is_ok()
                && schedule("rate(1 hour)").is_ok()
                && schedule("cron(0 12 * * ? *)").is_ok()
        );
        for bad in [
            "every 5 minutes",
            "rate(5 minute)",
            "rate(0 minutes)",
            "cron(0 12 * * *)",
            "cron(0 12 1 * MON *)",
        ] {
            assert!(schedule(bad).is_err(), "{bad}");
        }
        assert!(
            check(
                "sns_subscription",
                &json!({"protocol": "email", "endpoint": "not-an-email"}),
                "default"
            )[0]
            .contains("not an email")
        );
        assert!(
            check(
                "iam_role",
                &json!({"name": "(known after apply: x.name)"}),
                "default"
            )
            .is_empty(),
            "unknown values wait"
        );
        let table = |t: &str| {
            check(
                "dynamodb_table",
                &json!({"name": "user", "hash_key": "id", "hash_key_type": t, "billing_mode": "PAY_PER_REQUEST"}),
                "default",
            )
        };
        assert!(table("S").is_empty() && table("X")[0].contains("not S, N or B"));
        let st = |v: Value| {
            check(
                "iam_policy",
                &json!({"name": "p", "statement": [v]}),
                "default",
            )
        };
        assert!(st(json!({"Effect": "Allow", "Action": ["states:StartExecution", "s3:Get*"], "Resource": "arn:aws:s3:::b/*"})).is_empty());
        assert!(
            st(json!({"Effect": "Permit", "Action": "s3:GetObject", "Resource": "*"}))[0]
                .contains("Effect is \"Permit\"")
        );
        assert!(
            st(json!({"Effect": "Allow", "Action": "StartExecution", "Resource": "*"}))[0]
                .contains("is not service:Action")
        );
        assert!(
            st(json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "my-bucket"}))[0]
                .contains("neither * nor an ARN")
        );
        let huge: Vec<String> = (0..400)
            .map(|i| format!("s3:GetObjectVersion{i}"))
            .collect();
        assert!(
            st(json!({"Effect": "Allow", "Action": huge, "Resource": "*"}))[0]
                .contains("managed policies allow 6,144")
        );
    }
}
