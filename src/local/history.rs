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
    let task = || {
        let (t, op) = split_resource(d["resource"].as_str().unwrap_or_default());
        json!({"resourceType": t, "resource": op})
    };
    // an error or cause that is not there (or empty) is left out, as AWS does
    let named = |v: &Value| match v {
        Value::String(s) if s.is_empty() => Value::Null,
        other => other.clone(),
    };
    let error = || json!({"error": named(&d["error"]), "cause": named(&d["cause"])});
    let (key, details) = match e.kind {
        k if k.ends_with("StateEntered") => (
            "stateEnteredEventDetails",
            json!({"name": d["name"], "input": text(&d["input"]), "inputDetails": {"truncated": false}}),
        ),
        k if k.ends_with("StateExited") => (
            "stateExitedEventDetails",
            json!({"name": d["name"], "output": text(&d["output"]), "outputDetails": {"truncated": false}}),
        ),
        "TaskScheduled" => {
            let mut t = task();
            t["region"] = json!(region);
            t["parameters"] = json!(text(&d["parameters"]));
            for (from, to) in [
                ("timeoutInSeconds", "timeoutInSeconds"),
                ("heartbeatInSeconds", "heartbeatInSeconds"),
            ] {
                if let Some(n) = d[from].as_f64() {
                    t[to] = json!(n as i64);
                }
            }
            ("taskScheduledEventDetails", t)
        }
        "TaskStarted" => ("taskStartedEventDetails", task()),
        "TaskSucceeded" => {
            let mut t = task();
            t["output"] = json!(text(&d["output"]));
            t["outputDetails"] = json!({"truncated": false});
            ("taskSucceededEventDetails", t)
        }
        "TaskFailed" | "TaskTimedOut" => {
            let mut t = task();
            t["error"] = d["error"].clone();
            t["cause"] = d["cause"].clone();
            (
                if e.kind == "TaskFailed" {
                    "taskFailedEventDetails"
                } else {
                    "taskTimedOutEventDetails"
                },
                t,
            )
        }
        "LambdaFunctionScheduled" => {
            let mut t = json!({"resource": d["resource"], "input": text(&d["input"]), "inputDetails": {"truncated": false}});
            if let Some(n) = d["timeoutInSeconds"].as_f64() {
                t["timeoutInSeconds"] = json!(n as i64);
            }
            ("lambdaFunctionScheduledEventDetails", t)
        }
        "LambdaFunctionSucceeded" => (
            "lambdaFunctionSucceededEventDetails",
            json!({"output": text(&d["output"]), "outputDetails": {"truncated": false}}),
        ),
        "LambdaFunctionFailed" => ("lambdaFunctionFailedEventDetails", error()),
        "LambdaFunctionTimedOut" => ("lambdaFunctionTimedOutEventDetails", error()),
        "ExecutionStarted" => (
            "executionStartedEventDetails",
            json!({"input": text(&d["input"]), "inputDetails": {"truncated": false}, "roleArn": d["roleArn"]}),
        ),
        "ExecutionSucceeded" => (
            "executionSucceededEventDetails",
            json!({"output": text(&d["output"]), "outputDetails": {"truncated": false}}),
        ),
        "ExecutionFailed" => ("executionFailedEventDetails", error()),
        "ExecutionTimedOut" => ("executionTimedOutEventDetails", error()),
        "ExecutionAborted" => ("executionAbortedEventDetails", error()),
        "MapStateStarted" => (
            "mapStateStartedEventDetails",
            json!({"length": d["length"]}),
        ),
        "MapRunStarted" => (
            "mapRunStartedEventDetails",
            json!({"mapRunArn": d["mapRunArn"]}),
        ),
        "MapRunFailed" => ("mapRunFailedEventDetails", error()),
        "MapIterationStarted" => (
            "mapIterationStartedEventDetails",
            json!({"name": d["name"], "index": d["index"]}),
        ),
        "MapIterationSucceeded" => (
            "mapIterationSucceededEventDetails",
            json!({"name": d["name"], "index": d["index"]}),
        ),
        "MapIterationFailed" => (
            "mapIterationFailedEventDetails",
            json!({"name": d["name"], "index": d["index"]}),
        ),
        _ => return out,
    };
    // AWS leaves out members that have no value
    let details = match details {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    };
    out[key] = details;
    out
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
