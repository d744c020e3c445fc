//! The IAM permissions a state machine's role needs, derived from its Task states:
//! `aws-sdk:<service>:<action>` → `<service>:<Action>`, the optimised integrations
//! (`lambda:invoke`, `dynamodb:updateItem`, `sns:publish`, `http:invoke` with its connection
//! and secret, `states:startExecution.sync`, ...), with the resources they target where the
//! definition names them (a literal value; an expression gives `*`).

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// One permission a state needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Need {
    pub action: String,
    pub resource: String,
    /// The statement's `Condition`, when the grant is narrower than its resource
    /// (`states:InvokeHTTPEndpoint` for one endpoint and method).
    pub condition: Option<Value>,
    pub state: String,
    pub pointer: String,
}

/// Where ARNs are built: partition, region and account, and the state machine's name (`*`
/// where unknown).
#[derive(Debug, Clone)]
pub struct Place {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub machine: String,
}

impl Default for Place {
    fn default() -> Self {
        Place {
            partition: "aws".into(),
            region: "*".into(),
            account: "*".into(),
            machine: "*".into(),
        }
    }
}

impl Place {
    /// An ARN format of AWS's reference (`arn:${Partition}:iam::${Account}:user/${UserName}`)
    /// filled with the place, and `*` for what it does not know.
    fn fill(&self, format: &str) -> String {
        let known = format
            .replace("${Partition}", &self.partition)
            .replace("${Region}", &self.region)
            .replace("${AccountId}", &self.account)
            .replace("${Account}", &self.account);
        static NAMED: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new(r"\$\{[^}]*\}").unwrap());
        NAMED.replace_all(&known, "*").into_owned()
    }
}

/// SDK service names whose IAM prefix differs.
fn iam_prefix(service: &str) -> &str {
    match service {
        "sfn" => "states",
        "cloudwatchlogs" => "logs",
        "eventbridge" => "events",
        "cloudwatch" => "cloudwatch",
        "elasticloadbalancingv2" => "elasticloadbalancing",
        "sesv2" => "ses",
        other => other,
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// A literal argument (not an expression), by name, from Arguments or Parameters.
fn literal<'a>(args: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    if args.contains_key(&format!("{key}.$")) {
        return None;
    }
    args.get(key)
        .and_then(|v| v.as_str())
        .filter(|s| super::expr::jsonata_of(s).is_none())
}

fn resource_for(prefix: &str, action: &str, args: &Map<String, Value>, p: &Place) -> String {
    let (pa, r, a) = (&p.partition, &p.region, &p.account);
    let lit = |k: &str| literal(args, k);
    let arn_like = |v: &str| {
        if v.starts_with("arn:") {
            Some(v.to_string())
        } else {
            None
        }
    };
    let found = match prefix {
        "iam" => lit("UserName")
            .map(|n| format!("arn:{pa}:iam::{a}:user/{n}"))
            .or_else(|| {
                if action.contains("Group") {
                    lit("GroupName").map(|n| format!("arn:{pa}:iam::{a}:group/{n}"))
                } else {
                    None
                }
            })
            .or_else(|| lit("RoleName").map(|n| format!("arn:{pa}:iam::{a}:role/{n}"))),
        "s3" => lit("Bucket").map(|b| match lit("Key") {
            Some(k) => format!("arn:{pa}:s3:::{b}/{k}"),
            None if action.contains("Object") => format!("arn:{pa}:s3:::{b}/*"),
            None => format!("arn:{pa}:s3:::{b}"),
        }),
        "dynamodb" => lit("TableName")
            .map(|t| arn_like(t).unwrap_or_else(|| format!("arn:{pa}:dynamodb:{r}:{a}:table/{t}"))),
        "sns" => lit("TopicArn").map(str::to_string),
        "sqs" => lit("QueueUrl").map(|u| {
            let mut parts = u.trim_end_matches('/').rsplit('/');
            let name = parts.next().unwrap_or("*");
            let acct = parts
                .next()
                .filter(|x| x.chars().all(|c| c.is_ascii_digit()))
                .unwrap_or(a);
            format!("arn:{pa}:sqs:{r}:{acct}:{name}")
        }),
        "lambda" => lit("FunctionName").map(|f| {
            arn_like(f).unwrap_or_else(|| format!("arn:{pa}:lambda:{r}:{a}:function:{f}"))
        }),
        "datasync" if action == "StartTaskExecution" => lit("TaskArn").map(str::to_string),
        "states" => lit("StateMachineArn").map(str::to_string),
        _ => None,
    };
    found.unwrap_or_else(|| "*".into())
}

/// Every permission the definition's Task states need, in the definition's order (the states
/// of a Parallel branch or Map item processor where their Parallel or Map state is).
pub fn derive(def: &Value, place: &Place) -> Vec<Need> {
    let machine = crate::asl::Machine::parse(def);
    let mut out = Vec::new();
    for st in machine.top.all_states() {
        let (name, s, p) = (st.name, st.raw, &st.pointer);
        let (true, Some(resource)) = (s["Type"] == "Task", s["Resource"].as_str()) else {
            continue;
        };
        let empty = Map::new();
        let args = s["Arguments"]
            .as_object()
            .or(s["Parameters"].as_object())
            .unwrap_or(&empty);
        for (action, resource) in task_needs(resource, args, place) {
            let pointer = format!("{p}/Resource");
            let condition = (action == "states:InvokeHTTPEndpoint")
                .then(|| http_condition(args))
                .flatten();
            // what the definition does not name is still of a type: its ARN with `*` for
            // the names (`arn:aws:iam::123456789012:user/*`), where AWS takes one
            let scoped = match resource.as_str() {
                "*" => super::arns::formats(&action)
                    .iter()
                    .map(|f| place.fill(f))
                    .collect(),
                _ => vec![],
            };
            let resources = if scoped.is_empty() {
                vec![resource]
            } else {
                scoped
            };
            for resource in resources {
                out.push(Need {
                    action: action.clone(),
                    resource,
                    condition: condition.clone(),
                    state: name.to_string(),
                    pointer: pointer.clone(),
                });
            }
        }
    }
    out
}

type Needs = Vec<(String, String)>;

/// What an `aws-sdk:<service>:<action>` task needs: the service's IAM action from its model
/// (`aws-sdk:s3:getObject` → `s3:GetObject`), on what the arguments name.
fn sdk_needs(sdk: &str, args: &Map<String, Value>, place: &Place) -> Needs {
    let (service, action) = sdk.split_once(':').unwrap_or((sdk, ""));
    let from_model = crate::sdk::model::service(service).and_then(|svc| {
        let (op, _) = svc.operation(action)?;
        Some(svc.iam_action(op))
    });
    let (prefix, action) = match from_model.as_deref().and_then(|a| a.split_once(':')) {
        Some((p, a)) => (p.to_string(), a.to_string()),
        None => (iam_prefix(service).to_string(), upper_first(action)),
    };
    let resource = resource_for(&prefix, &action, args, place);
    vec![(format!("{prefix}:{action}"), resource)]
}

/// What a Task's Resource needs: (IAM action, resource) pairs.
fn task_needs(resource: &str, args: &Map<String, Value>, place: &Place) -> Needs {
    let Some(rest) = crate::asl::integration(resource) else {
        // A plain Lambda function or activity ARN (activities are polled by workers: the
        // role needs nothing for them).
        return match resource.contains(":lambda:") {
            true => vec![("lambda:InvokeFunction".into(), resource.to_string())],
            false => vec![],
        };
    };
    let (integration, pattern) = match rest.split_once(".sync") {
        Some((i, _)) => (i, "sync"),
        None => match rest.strip_suffix(".waitForTaskToken") {
            Some(i) => (i, "token"),
            None => (rest, ""),
        },
    };
    if let Some(sdk) = integration.strip_prefix("aws-sdk:") {
        return sdk_needs(sdk, args, place);
    }
    match integration.split_once(':').unwrap_or((integration, "")) {
        ("lambda", "invoke") => vec![(
            "lambda:InvokeFunction".into(),
            resource_for("lambda", "InvokeFunction", args, place),
        )],
        ("http", "invoke") => http_needs(args, place),
        ("states", "startExecution") => {
            let mut n = vec![(
                "states:StartExecution".into(),
                resource_for("states", "StartExecution", args, place),
            )];
            if pattern == "sync" {
                // the child's executions: of the machine named, else of any
                let executions = literal(args, "StateMachineArn")
                    .filter(|a| a.contains(":stateMachine:"))
                    .map(|a| format!("{}:*", a.replacen(":stateMachine:", ":execution:", 1)))
                    .unwrap_or_else(|| "*".into());
                n.push(("states:DescribeExecution".into(), executions.clone()));
                n.push(("states:StopExecution".into(), executions));
                n.extend(sync_rule(
                    place,
                    "StepFunctionsGetEventsForStepFunctionsExecutionRule",
                ));
            }
            n
        }
        (svc, act) => optimised_needs(svc, act, pattern, args, place),
    }
}

/// `http:invoke`: the endpoint, the connection's credentials and its secret.
fn http_needs(args: &Map<String, Value>, place: &Place) -> Needs {
    let (pa, r, a) = (&place.partition, &place.region, &place.account);
    let conn = args
        .get("InvocationConfig")
        .and_then(|c| c.as_object())
        .and_then(|c| literal(c, "ConnectionArn"))
        .map(str::to_string);
    let secret = conn
        .as_deref()
        .and_then(|c| c.split("connection/").nth(1))
        .and_then(|rest| rest.split('/').next())
        .map(|n| format!("arn:{pa}:secretsmanager:{r}:{a}:secret:events!connection/{n}/*"))
        .unwrap_or_else(|| "*".into());
    let machine = format!("arn:{pa}:states:{r}:{a}:stateMachine:{}", place.machine);
    vec![
        ("states:InvokeHTTPEndpoint".into(), machine),
        (
            "events:RetrieveConnectionCredentials".into(),
            conn.unwrap_or_else(|| "*".into()),
        ),
        ("secretsmanager:GetSecretValue".into(), secret.clone()),
        ("secretsmanager:DescribeSecret".into(), secret),
    ]
}

/// An HTTP Task's grant narrowed to the endpoint and method it names (`states:HTTPEndpoint`,
/// `states:HTTPMethod`, as AWS documents for `states:InvokeHTTPEndpoint`).
fn http_condition(args: &Map<String, Value>) -> Option<Value> {
    let mut c = Map::new();
    if let Some(m) = literal(args, "Method") {
        c.insert("StringEquals".into(), json!({"states:HTTPMethod": m}));
    }
    if let Some(e) = literal(args, "ApiEndpoint") {
        // the query string, when there is one, follows the endpoint
        c.insert(
            "StringLike".into(),
            json!({"states:HTTPEndpoint": format!("{e}*")}),
        );
    }
    (!c.is_empty()).then_some(Value::Object(c))
}

/// Optimised integrations name the API action in camel case: sns:publish,
/// dynamodb:updateItem, sqs:sendMessage, ecs:runTask, batch:submitJob, glue:startJobRun, ...;
/// `.sync` adds what polling and stopping the job needs.
fn optimised_needs(
    svc: &str,
    act: &str,
    pattern: &str,
    args: &Map<String, Value>,
    place: &Place,
) -> Needs {
    let (prefix, action) = (iam_prefix(svc), upper_first(act));
    let mut n = vec![(
        format!("{prefix}:{action}"),
        resource_for(prefix, &action, args, place),
    )];
    if pattern == "sync" {
        let extra: &[&str] = match svc {
            "batch" => &["batch:DescribeJobs", "batch:TerminateJob"],
            "ecs" => &["ecs:DescribeTasks", "ecs:StopTask"],
            "glue" => &["glue:GetJobRun", "glue:BatchStopJobRun"],
            "codebuild" => &["codebuild:BatchGetBuilds", "codebuild:StopBuild"],
            _ => &[],
        };
        n.extend(extra.iter().map(|x| (x.to_string(), "*".to_string())));
        n.extend(sync_rule(place, "StepFunctions*"));
    }
    n
}

/// The EventBridge rule Step Functions manages for a `.sync` integration.
fn sync_rule(place: &Place, rule: &str) -> Needs {
    let arn = format!(
        "arn:{}:events:{}:{}:rule/{rule}",
        place.partition, place.region, place.account
    );
    ["events:PutTargets", "events:PutRule", "events:DescribeRule"]
        .iter()
        .map(|ev| (ev.to_string(), arn.clone()))
        .collect()
}

pub use super::arns::glob;

/// The actions an Allow statement grants.
pub fn granted_actions(statements: &[Value]) -> Vec<String> {
    statements
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| match &s["Action"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        })
        .collect()
}

/// The least-privilege policy document for a set of needs: one statement per action set
/// sharing the same resources.
pub fn least_privilege(needs: &[Need]) -> Value {
    // a grant with a condition is a statement of its own
    let (narrowed, plain): (Vec<&Need>, Vec<&Need>) =
        needs.iter().partition(|n| n.condition.is_some());
    let mut by_action: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in plain {
        let rs = by_action.entry(n.action.clone()).or_default();
        if !rs.contains(&n.resource) {
            rs.push(n.resource.clone());
        }
    }
    for rs in by_action.values_mut() {
        if rs.iter().any(|r| r == "*") {
            *rs = vec!["*".into()];
        }
        rs.sort();
    }
    let mut by_resources: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    for (action, rs) in by_action {
        match by_resources.iter_mut().find(|(r, _)| *r == rs) {
            Some((_, actions)) => actions.push(action),
            None => by_resources.push((rs, vec![action])),
        }
    }
    let mut statements: Vec<Value> = by_resources
        .into_iter()
        .map(|(rs, actions)| {
            let resource = if rs.len() == 1 {
                json!(rs[0])
            } else {
                json!(rs)
            };
            json!({"Effect": "Allow", "Action": actions, "Resource": resource})
        })
        .collect();
    for n in narrowed {
        let st = json!({"Effect": "Allow", "Action": [n.action], "Resource": n.resource, "Condition": n.condition});
        if !statements.contains(&st) {
            statements.push(st);
        }
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(resource: &str, args: Value) -> Vec<(String, String)> {
        let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": resource, "Arguments": args, "End": true}}});
        let place = Place {
            partition: "aws".into(),
            region: "us-east-1".into(),
            account: "123456789012".into(),
            machine: "m".into(),
        };
        derive(&def, &place)
            .into_iter()
            .map(|n| (n.action, n.resource))
            .collect()
    }

    #[test]
    fn regional_and_model_named_integrations_map_to_iam_actions() {
        let acts = |r: &str| {
            needs(r, json!({}))
                .into_iter()
                .map(|(a, _)| a)
                .fold(Vec::new(), |mut v, a| {
                    if !v.contains(&a) {
                        v.push(a)
                    }
                    v
                })
        };
        assert_eq!(
            acts("arn:aws:states:us-east-1:123456789012:aws-sdk:s3:getObject"),
            ["s3:GetObject"]
        );
        assert_eq!(
            acts("arn:aws:states:::aws-sdk:redshiftdata:executeStatement"),
            ["redshift-data:ExecuteStatement"]
        );
        assert_eq!(
            acts("arn:aws:states:::aws-sdk:cloudwatch:putMetricAlarm"),
            ["cloudwatch:PutMetricAlarm"]
        );
        assert_eq!(
            acts("arn:aws:lambda:us-east-1:123456789012:function:f"),
            ["lambda:InvokeFunction"]
        );
    }

    #[test]
    fn sdk_integrations_map_to_iam_actions_and_named_resources() {
        assert_eq!(
            needs(
                "arn:aws:states:::aws-sdk:iam:attachUserPolicy",
                json!({"UserName": "ci", "PolicyArn": "x"})
            ),
            vec![(
                "iam:AttachUserPolicy".into(),
                "arn:aws:iam::123456789012:user/ci".into()
            )]
        );
        assert_eq!(
            needs(
                "arn:aws:states:::aws-sdk:iam:createUser",
                json!({"UserName": "{% $u %}"})
            ),
            // named by an expression: any user, still only users
            vec![(
                "iam:CreateUser".into(),
                "arn:aws:iam::123456789012:user/*".into()
            )]
        );
        assert_eq!(
            needs(
                "arn:aws:states:::aws-sdk:s3:deleteObject",
                json!({"Bucket": "b", "Key.$": "$.k"})
            ),
            vec![("s3:DeleteObject".into(), "arn:aws:s3:::b/*".into())]
        );
        assert_eq!(
            needs("arn:aws:states:::aws-sdk:sfn:describeExecution", json!({})),
            // no execution named: any of this account's, standard or express
            vec![
                (
                    "states:DescribeExecution".into(),
                    "arn:aws:states:us-east-1:123456789012:execution:*:*".into()
                ),
                (
                    "states:DescribeExecution".into(),
                    "arn:aws:states:us-east-1:123456789012:express:*:*:*".into()
                )
            ]
        );
        let child = needs(
            "arn:aws:states:::states:startExecution.sync",
            json!({"StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:child"}),
        );
        assert_eq!(
            child[1],
            (
                "states:DescribeExecution".into(),
                "arn:aws:states:us-east-1:123456789012:execution:child:*".into()
            )
        );
    }

    #[test]
    fn optimised_integrations() {
        assert_eq!(
            needs(
                "arn:aws:states:::lambda:invoke",
                json!({"FunctionName": "resize:$LATEST"})
            ),
            vec![(
                "lambda:InvokeFunction".into(),
                "arn:aws:lambda:us-east-1:123456789012:function:resize:$LATEST".into()
            )]
        );
        assert_eq!(
            needs(
                "arn:aws:states:::sns:publish.waitForTaskToken",
                json!({"TopicArn": "arn:aws:sns:us-east-1:1:t"})
            ),
            vec![("sns:Publish".into(), "arn:aws:sns:us-east-1:1:t".into())]
        );
        assert_eq!(
            needs(
                "arn:aws:states:::dynamodb:updateItem",
                json!({"TableName": "user"})
            ),
            vec![(
                "dynamodb:UpdateItem".into(),
                "arn:aws:dynamodb:us-east-1:123456789012:table/user".into()
            )]
        );
        let http = needs(
            "arn:aws:states:::http:invoke",
            json!({"InvocationConfig": {"ConnectionArn": "arn:aws:events:us-east-1:1:connection/c/abc"}}),
        );
        assert_eq!(
            http[0],
            (
                "states:InvokeHTTPEndpoint".into(),
                "arn:aws:states:us-east-1:123456789012:stateMachine:m".into()
            )
        );
        assert_eq!(
            http[1],
            (
                "events:RetrieveConnectionCredentials".into(),
                "arn:aws:events:us-east-1:1:connection/c/abc".into()
            )
        );
        assert_eq!(
            http[2].1,
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:events!connection/c/*"
        );
        let sync: Vec<String> = needs(
            "arn:aws:states:::states:startExecution.sync:2",
            json!({"StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:child"}),
        )
        .into_iter()
        .map(|n| n.0)
        .collect();
        assert_eq!(
            sync,
            vec![
                "states:StartExecution",
                "states:DescribeExecution",
                "states:StopExecution",
                "events:PutTargets",
                "events:PutRule",
                "events:DescribeRule"
            ]
        );
    }

    #[test]
    fn globs_and_least_privilege() {
        assert!(
            glob("s3:Get*", "s3:GetObject")
                && glob("*", "iam:CreateUser")
                && glob("IAM:createuser", "iam:CreateUser")
        );
        assert!(!glob("s3:Get*", "s3:PutObject"));
        let n = |a: &str, r: &str| Need {
            action: a.into(),
            resource: r.into(),
            condition: None,
            state: "s".into(),
            pointer: String::new(),
        };
        let doc = least_privilege(&[
            n("iam:CreateUser", "*"),
            n("iam:AddUserToGroup", "*"),
            n("sns:Publish", "arn:t"),
        ]);
        assert_eq!(
            doc["Statement"],
            json!([{"Effect": "Allow", "Action": ["iam:AddUserToGroup", "iam:CreateUser"], "Resource": "*"}, {"Effect": "Allow", "Action": ["sns:Publish"], "Resource": "arn:t"}])
        );
    }
}
