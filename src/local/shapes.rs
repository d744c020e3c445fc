//! A mocked task result checked against the response shape of the API the task calls, as
//! TestState checks it: the shapes come from the AWS SDK models (`shapes.json`, written by
//! `scripts/gen-mock-shapes` from botocore's models). STRICT: required fields present and every
//! field the model knows of the right type; PRESENT: only the types of the fields present;
//! NONE: nothing. A field the model does not know is let through, as AWS lets it through.

use serde_json::{Map, Value};
use std::sync::LazyLock;

static MODELS: LazyLock<Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("shapes.json")).expect("shapes.json is JSON")
});

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Strict,
    Present,
    None,
}

impl Mode {
    pub fn of(name: Option<&str>) -> Option<Mode> {
        match name {
            None | Some("STRICT") => Some(Mode::Strict),
            Some("PRESENT") => Some(Mode::Present),
            Some("NONE") => Some(Mode::None),
            Some(_) => None,
        }
    }
}

/// The shape a Task's result has, by its Resource: an optimised integration (`lambda:invoke`,
/// `dynamodb:getItem`, `states:startExecution.sync`, ...) or an SDK one (`aws-sdk:s3:getObject`).
/// None: nothing to check it against (an activity, a Lambda function by ARN, an HTTP task).
pub fn shape_of(resource: &str) -> Option<String> {
    let r = resource.strip_prefix("arn:aws:states:::")?;
    let (r, pattern) = match r.split_once('.') {
        Some((r, p)) => (r, p),
        None => (r, ""),
    };
    let ops = &MODELS["operations"];
    let op = |key: &str| ops[key].as_str().map(str::to_string);
    let sync = pattern.starts_with("sync");
    // a task token's answer is whatever the worker sends: no API shape to check it against
    if pattern.starts_with("waitForTaskToken") {
        return None;
    }
    if let Some(sdk) = r.strip_prefix("aws-sdk:") {
        return op(sdk);
    }
    let (service, action) = r.split_once(':')?;
    match (service, action, sync) {
        ("states", "startExecution", true) => op("sfn:describeExecution"),
        ("states", a, _) => op(&format!("sfn:{a}")),
        ("events", a, _) => op(&format!("eventbridge:{a}")),
        ("ecs", "runTask", true) => Some("ecs.Task".into()),
        ("glue", "startJobRun", true) => Some("glue.JobRun".into()),
        (s, a, _) => op(&format!("{s}:{a}")),
    }
}

/// Checks `value` against the shape named `shape`; the message AWS gives when it does not fit.
pub fn check(value: &Value, shape: &str, mode: Mode) -> Result<(), String> {
    if mode == Mode::None {
        return Ok(());
    }
    let top = lambda_payload(shape);
    walk(value, shape, None, mode, top)
        .map_err(|why| format!("Mock result schema validation error: {why}"))
}

/// Lambda's Invoke answers its Payload (a blob in the model) as the function's JSON through
/// Step Functions: any JSON is let through there.
fn lambda_payload(shape: &str) -> bool {
    shape == "lambda.InvocationResponse"
}

fn walk(
    value: &Value,
    shape: &str,
    field: Option<&str>,
    mode: Mode,
    lambda: bool,
) -> Result<(), String> {
    let s = &MODELS["shapes"][shape];
    let named = |what: &str| match field {
        Some(f) => format!("Field '{f}' {what}"),
        None => format!("The result {what}"),
    };
    match s["t"].as_str().unwrap_or_default() {
        "structure" => {
            let obj = value
                .as_object()
                .ok_or_else(|| named("must be an object"))?;
            structure(obj, s, mode, lambda)
        }
        "list" => {
            let items = value.as_array().ok_or_else(|| named("must be an array"))?;
            let item = s["i"].as_str().unwrap_or_default();
            items
                .iter()
                .try_for_each(|v| walk(v, item, field, mode, false))
        }
        "map" => {
            let obj = value
                .as_object()
                .ok_or_else(|| named("must be an object"))?;
            let v = s["v"].as_str().unwrap_or_default();
            obj.iter()
                .try_for_each(|(k, x)| walk(x, v, Some(k), mode, false))
        }
        _ => scalar(value, s, &named),
    }
}

/// A number, boolean, blob, string (an enum's value) or timestamp (as text).
fn scalar(value: &Value, s: &Value, named: &dyn Fn(&str) -> String) -> Result<(), String> {
    let is = |ok: bool, what: &str| if ok { Ok(()) } else { Err(named(what)) };
    match s["t"].as_str().unwrap_or_default() {
        "integer" | "long" | "float" | "double" => {
            let n = value.as_f64().ok_or_else(|| named("must be a number"))?;
            is(
                !s["min"].as_f64().is_some_and(|m| n < m),
                "is less than the minimum value",
            )?;
            is(
                !s["max"].as_f64().is_some_and(|m| n > m),
                "exceeds the maximum value",
            )
        }
        "boolean" => is(value.is_boolean(), "must be a boolean"),
        "blob" => {
            let text = value.as_str().ok_or_else(|| named("must be a string"))?;
            let short = s["min"].as_u64().is_some_and(|m| (text.len() as u64) < m);
            is(!short, "is smaller than the minimum length")
        }
        "string" => {
            let text = value.as_str().ok_or_else(|| named("must be a string"))?;
            let values = s["e"].as_array();
            is(
                values.is_none_or(|e| e.iter().any(|x| x == text)),
                "is not an expected value",
            )
        }
        // timestamps are written as text
        "timestamp" => is(value.is_string(), "must be a string"),
        _ => Ok(()),
    }
}

fn structure(obj: &Map<String, Value>, s: &Value, mode: Mode, lambda: bool) -> Result<(), String> {
    if mode == Mode::Strict {
        for r in s["r"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !obj.contains_key(r) {
                return Err(format!("Required field '{r}' is missing"));
            }
        }
    }
    for (k, v) in obj {
        let Some(member) = s["m"][k].as_str() else {
            continue;
        };
        if lambda && k == "Payload" {
            continue;
        }
        walk(v, member, Some(k), mode, false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check_for(resource: &str, v: Value, mode: Mode) -> Result<(), String> {
        check(&v, &shape_of(resource).expect("a known shape"), mode)
    }

    #[test]
    fn mocks_are_checked_as_aws_checks_them() {
        let lambda = "arn:aws:states:::lambda:invoke";
        let e = check_for(lambda, json!({"StatusCode": "200"}), Mode::Strict).unwrap_err();
        assert_eq!(
            e,
            "Mock result schema validation error: Field 'StatusCode' must be a number"
        );
        assert!(check_for(lambda, json!({"StatusCode": "200"}), Mode::None).is_ok());
        assert!(
            check_for(
                lambda,
                json!({"Payload": {"ok": true}, "StatusCode": 200}),
                Mode::Strict
            )
            .is_ok()
        );
        // a field the API does not know is let through, as AWS does
        assert!(check_for(lambda, json!({"Random": 1}), Mode::Strict).is_ok());
        let sfn = "arn:aws:states:::states:startExecution";
        let e = check_for(sfn, json!({"executionArn": "x"}), Mode::Strict).unwrap_err();
        assert!(
            e.ends_with("Required field 'ExecutionArn' is missing"),
            "{e}"
        );
        assert!(check_for(sfn, json!({}), Mode::Present).is_ok());
        let e = check_for(
            sfn,
            json!({"ExecutionArn": "x", "StartDate": true}),
            Mode::Present,
        )
        .unwrap_err();
        assert!(e.ends_with("Field 'StartDate' must be a string"), "{e}");
        let events = "arn:aws:states:::events:putEvents";
        let e = check_for(
            events,
            json!({"Entries": [{"EventId": "a"}, {"EventId": ["b"]}]}),
            Mode::Strict,
        )
        .unwrap_err();
        assert!(e.ends_with("Field 'EventId' must be a string"), "{e}");
        let s3 = "arn:aws:states:::aws-sdk:s3:getObject";
        let e = check_for(s3, json!({"StorageClass": "Papyrus"}), Mode::Strict).unwrap_err();
        assert!(
            e.ends_with("Field 'StorageClass' is not an expected value"),
            "{e}"
        );
        assert_eq!(shape_of("arn:aws:lambda:us-east-1:1:function:f"), None);
        assert!(shape_of("arn:aws:states:::states:startExecution.sync:2").is_some());
        assert_eq!(
            shape_of("arn:aws:states:::sqs:sendMessage.waitForTaskToken"),
            None
        );
    }
}
