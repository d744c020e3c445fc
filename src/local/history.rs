//! The engine's events as GetExecutionHistory returns them: `type`, `id`, `previousEventId`,
//! `timestamp` and the `<kind>EventDetails` member AWS uses for each type (inputs and outputs
//! as JSON text, task resources split into type and operation).

use crate::engine::{Event, split_resource};
use serde_json::{Value, json};

fn text(v: &Value) -> String {
    v.to_string()
}

pub fn event(e: &Event, started: f64, region: &str) -> Value {
    let d = &e.details.value();
    let mut out =
        json!({"id": e.id, "previousEventId": e.prev, "timestamp": started + e.at, "type": e.kind});
    let details = match other_details(e.kind, d).or_else(|| task_details(e.kind, d, region)) {
        Some(details) => details,
        None => return out,
    };
    // the member is named after the type (any state type's StateEntered: stateEntered...)
    let key: std::borrow::Cow<str> = match e.kind {
        k if k.ends_with("StateEntered") => "stateEnteredEventDetails".into(),
        k if k.ends_with("StateExited") => "stateExitedEventDetails".into(),
        k => format!("{}{}EventDetails", k[..1].to_ascii_lowercase(), &k[1..]).into(),
    };
    // AWS leaves out members that have no value
    let details = match details {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    };
    out[key.as_ref()] = details;
    out
}

/// An error or cause that is not there (or empty) is left out, as AWS does.
fn error(d: &Value) -> Value {
    let named = |v: &Value| match v {
        Value::String(s) if s.is_empty() => Value::Null,
        other => other.clone(),
    };
    json!({"error": named(&d["error"]), "cause": named(&d["cause"])})
}

/// The details of a Task or Lambda event.
fn task_details(kind: &str, d: &Value, region: &str) -> Option<Value> {
    if !kind.starts_with("Task") && !kind.starts_with("LambdaFunction") {
        return None;
    }
    let (t, op) = split_resource(d["resource"].as_str().unwrap_or_default());
    let mut task = json!({"resourceType": t, "resource": op});
    let seconds = |v: &Value| v.as_f64().map(|n| json!(n as i64));
    match kind {
        "TaskScheduled" => {
            task["region"] = json!(region);
            task["parameters"] = json!(text(&d["parameters"]));
            for k in ["timeoutInSeconds", "heartbeatInSeconds"] {
                if let Some(n) = seconds(&d[k]) {
                    task[k] = n;
                }
            }
        }
        "TaskStarted" => {}
        "TaskSucceeded" => {
            task["output"] = json!(text(&d["output"]));
            task["outputDetails"] = json!({"truncated": false});
        }
        "TaskFailed" | "TaskTimedOut" => {
            task["error"] = d["error"].clone();
            task["cause"] = d["cause"].clone();
        }
        "LambdaFunctionScheduled" => {
            let mut t = json!({"resource": d["resource"], "input": text(&d["input"]), "inputDetails": {"truncated": false}});
            if let Some(n) = seconds(&d["timeoutInSeconds"]) {
                t["timeoutInSeconds"] = n;
            }
            return Some(t);
        }
        "LambdaFunctionSucceeded" => {
            return Some(
                json!({"output": text(&d["output"]), "outputDetails": {"truncated": false}}),
            );
        }
        "LambdaFunctionFailed" | "LambdaFunctionTimedOut" => return Some(error(d)),
        _ => return None,
    }
    Some(task)
}

/// The details of the execution's, a state's and a Map's events.
fn other_details(kind: &str, d: &Value) -> Option<Value> {
    Some(match kind {
        k if k.ends_with("StateEntered") => {
            json!({"name": d["name"], "input": text(&d["input"]), "inputDetails": {"truncated": false}})
        }
        k if k.ends_with("StateExited") => {
            json!({"name": d["name"], "output": text(&d["output"]), "outputDetails": {"truncated": false}})
        }
        "ExecutionStarted" => {
            json!({"input": text(&d["input"]), "inputDetails": {"truncated": false}, "roleArn": d["roleArn"]})
        }
        "ExecutionSucceeded" => {
            json!({"output": text(&d["output"]), "outputDetails": {"truncated": false}})
        }
        "ExecutionFailed" | "ExecutionTimedOut" | "ExecutionAborted" | "MapRunFailed" => error(d),
        "EvaluationFailed" => {
            json!({"error": d["error"], "cause": d["cause"], "state": d["state"]})
        }
        "MapStateStarted" => json!({"length": d["length"]}),
        "ActivityScheduled" => {
            let mut a = json!({"resource": d["resource"], "input": text(&d["input"]), "inputDetails": {"truncated": false}});
            for k in ["timeoutInSeconds", "heartbeatInSeconds"] {
                if let Some(n) = d[k].as_f64() {
                    a[k] = json!(n as i64);
                }
            }
            a
        }
        "ActivityStarted" => json!({"workerName": d["workerName"]}),
        "ActivitySucceeded" => {
            json!({"output": text(&d["output"]), "outputDetails": {"truncated": false}})
        }
        "ActivityFailed" | "ActivityTimedOut" => error(d),
        "ExecutionRedriven" => json!({"redriveCount": d["redriveCount"]}),
        "MapRunStarted" => json!({"mapRunArn": d["mapRunArn"]}),
        "MapIterationStarted" | "MapIterationSucceeded" | "MapIterationFailed" => {
            json!({"name": d["name"], "index": d["index"]})
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_split_as_aws_shows_them() {
        assert_eq!(
            split_resource("arn:aws:states:::aws-sdk:iam:createUser"),
            ("aws-sdk:iam".into(), "createUser".into())
        );
        assert_eq!(
            split_resource("arn:aws:states:::sns:publish.waitForTaskToken"),
            ("sns".into(), "publish.waitForTaskToken".into())
        );
        assert_eq!(
            split_resource("arn:aws:states:::http:invoke"),
            ("http".into(), "invoke".into())
        );
        // a region- and account-qualified integration ARN reads the same
        assert_eq!(
            split_resource("arn:aws:states:us-east-1:123456789012:aws-sdk:s3:getObject"),
            ("aws-sdk:s3".into(), "getObject".into())
        );
    }

    #[test]
    fn events_carry_their_details_member() {
        let e = Event {
            id: 3,
            prev: 2,
            kind: "TaskFailed",
            at: 1.5,
            details: crate::engine::Details::new(
                &json!({"resource": "arn:aws:states:::lambda:invoke", "error": "E", "cause": "c"}),
            ),
        };
        let v = event(&e, 1000.0, "us-east-1");
        assert_eq!(v["timestamp"], json!(1001.5));
        assert_eq!(v["previousEventId"], json!(2));
        assert_eq!(
            v["taskFailedEventDetails"],
            json!({"resourceType": "lambda", "resource": "invoke", "error": "E", "cause": "c"})
        );
    }
}
