//! TestState: the request checked as AWS checks it (the definition, the state named, the mock
//! and its shape), the state run on its own by the engine (`engine::probe`), and the answer in
//! the API's shape: each inspection value as JSON text, at the level asked for.

use super::Server;
use super::api::*;
use super::shapes::{self, Mode};
use super::tasks::{HTTP_TRACE, HttpTrace, LocalTasks};
use crate::asl::{self, Kind};
use crate::engine::probe::{self, Mock, Probe, Situation};
use crate::engine::{Options, clock};
use serde_json::{Map, Value, json};
use std::sync::Arc;

const MAP_OR_PARALLEL: &str = "TestState API does not support Map or Parallel states. Supported state types include: [Task, Wait, Pass, Succeed, Fail, Choice]";

impl Server {
    pub(super) async fn test_state(self: &Arc<Self>, body: &Value) -> ApiResult {
        let req = Request::read(body)?;
        let machine = asl::Machine::parse(&req.definition);
        let (_, state) = machine.top.find(&req.state).ok_or_else(|| {
            let names: Vec<&str> = machine.top.all_states().iter().map(|s| s.name).collect();
            bad(
                "ValidationException",
                format!(
                    "State '{}' was not found in the state machine definition. States in it: [{}]",
                    req.state,
                    names.join(", ")
                ),
            )
        })?;
        let mock = check_mock(body, state)?;
        let opts = self.probe_options(body);
        let tasks = LocalTasks {
            integrations: self.integrations.clone(),
            mocks: None,
        };
        let p = Probe {
            definition: &req.definition,
            state: &req.state,
            input: req.input,
            variables: req.variables,
            context: req.context,
            mock,
            situation: req.situation,
        };
        let trace = Arc::new(std::sync::Mutex::new(HttpTrace::default()));
        // AWS: a TestState runs for five minutes at most
        let run = HTTP_TRACE.scope(trace.clone(), probe::probe(&p, &opts, &tasks));
        let probed = tokio::time::timeout(std::time::Duration::from_secs(300), run)
            .await
            .unwrap_or_else(|_| probe::Probed {
                status: "FAILED",
                error: Some("States.Timeout".into()),
                cause: Some(
                    "The state did not finish within five minutes, the most a TestState runs"
                        .into(),
                ),
                ..Default::default()
            });
        let mut out = answer(probed, req.level);
        if req.level == "TRACE" {
            traced(&mut out, &trace.lock().unwrap());
        }
        Ok(out)
    }
}

impl Server {
    /// The execution a tested state's context object describes (an Express one, as AWS's).
    fn probe_options(&self, body: &Value) -> Options {
        let name = uuid();
        Options {
            name: name.clone(),
            execution_arn: format!(
                "arn:aws:states:{}:{}:express:TestStateMachine:{name}",
                self.region, self.account
            ),
            machine_name: "TestStateMachine".into(),
            machine_arn: self.machine_arn("TestStateMachine"),
            role_arn: body["roleArn"].as_str().unwrap_or_default().to_string(),
            time_scale: self.time_scale,
            callbacks: Some(self.callbacks.clone()),
            cancel: Default::default(),
            clock: clock::Clock::Real,
            children: None,
        }
    }
}

/// TRACE: the HTTP task's request and response in the inspection data.
fn traced(out: &mut Value, t: &HttpTrace) {
    let data = &mut out["inspectionData"];
    for (k, v) in [("request", &t.request), ("response", &t.response)] {
        if let Some(v) = v {
            data[k] = v.clone();
        }
    }
}

/// A TestState request, read and checked.
struct Request {
    definition: Value,
    state: String,
    input: Value,
    variables: Map<String, Value>,
    context: Option<Value>,
    level: &'static str,
    situation: Situation,
}

impl Request {
    fn read(body: &Value) -> Result<Request, ApiError> {
        let text = str_arg(body, "definition")?;
        let given: Value = serde_json::from_str(text).map_err(|e| {
            bad(
                "InvalidDefinition",
                format!("Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: {e}'"),
            )
        })?;
        // with stateName, a whole definition and the state in it; without, a lone state
        let (definition, state, checked) = match body["stateName"].as_str() {
            Some(n) => (given.clone(), n.to_string(), given),
            None if given.get("States").is_some() => {
                return Err(bad(
                    "InvalidDefinition",
                    "Invalid State Machine Definition: the definition is a whole state machine: give stateName, the state of it to test",
                ));
            }
            None => {
                let n = "StateName".to_string();
                let wrapped = Probe::wrap(&given, &n);
                let checked = closed(&wrapped, &n);
                (wrapped, n, checked)
            }
        };
        super::machines::check_definition(&checked.to_string())?;
        let (input, variables, context) = data_of(body)?;
        let (level, situation) = (level_of(body)?, situation_of(body)?);
        Ok(Request {
            definition,
            state,
            input,
            variables,
            context,
            level,
            situation,
        })
    }
}

/// The state's input, the variables and the context object of a request.
type Data = (Value, Map<String, Value>, Option<Value>);

/// The state's input, the variables and the context object of a request, each JSON.
fn data_of(body: &Value) -> Result<Data, ApiError> {
    let json_arg = |k: &str, default: &str| -> Result<Value, ApiError> {
        let t = body[k].as_str().unwrap_or(default);
        serde_json::from_str(t)
            .map_err(|e| bad("ValidationException", format!("{k} is not JSON: {e}")))
    };
    let input: Value = serde_json::from_str(body["input"].as_str().unwrap_or("{}"))
        .map_err(|e| bad("InvalidExecutionInput", format!("Invalid State Input: {e}")))?;
    if body.get("context").is_some() && body.get("mock").is_none() {
        return Err(bad(
            "ValidationException",
            "A context may only be specified if a mock is specified in the same request.",
        ));
    }
    let variables = match json_arg("variables", "{}")? {
        Value::Object(m) => m,
        _ => {
            return Err(bad(
                "ValidationException",
                "variables must be a JSON object",
            ));
        }
    };
    let context = match body.get("context") {
        Some(_) => Some(json_arg("context", "{}")?),
        None => None,
    };
    Ok((input, variables, context))
}

/// `inspectionLevel`: INFO (the default), DEBUG or TRACE.
fn level_of(body: &Value) -> Result<&'static str, ApiError> {
    match body["inspectionLevel"].as_str() {
        None | Some("INFO") => Ok("INFO"),
        Some("DEBUG") => Ok("DEBUG"),
        Some("TRACE") => Ok("TRACE"),
        Some(other) => Err(bad(
            "ValidationException",
            format!(
                "1 validation error detected: Value '{other}' at 'inspectionLevel' failed to satisfy constraint: Member must satisfy enum value set: [INFO, DEBUG, TRACE]"
            ),
        )),
    }
}

/// `stateConfiguration`: where in its life the tested state is.
fn situation_of(body: &Value) -> Result<Situation, ApiError> {
    let config = &body["stateConfiguration"];
    let reader_data = match config["mapItemReaderData"].as_str() {
        Some(t) => Some(serde_json::from_str(t).map_err(|e| {
            bad(
                "ValidationException",
                format!("mapItemReaderData is not JSON: {e}"),
            )
        })?),
        None => None,
    };
    Ok(Situation {
        retries: config["retrierRetryCount"].as_u64().unwrap_or(0),
        map_failures: config["mapIterationFailureCount"].as_u64(),
        reader_data,
    })
}

/// A lone state wrapped as a definition, with a Succeed state for each state it names (a Next,
/// a Choice's, a Catch's), so that the definition check does not refuse those.
fn closed(definition: &Value, name: &str) -> Value {
    let mut d = definition.clone();
    let machine = asl::Machine::parse(definition);
    let targets: Vec<String> = machine
        .top
        .state(name)
        .map(|s| s.transitions.iter().map(|t| t.to.to_string()).collect())
        .unwrap_or_default();
    for t in targets {
        if t != name {
            d["States"][t] = json!({"Type": "Succeed"});
        }
    }
    d
}

/// The mock, checked: one of result and errorOutput, on a state that can have one, its result
/// JSON of the shape the state's call answers (as `fieldValidationMode` asks); Map and Parallel
/// states, `.sync` and `.waitForTaskToken` tasks and activities need one.
fn check_mock(body: &Value, state: &asl::State<'_>) -> Result<Option<Mock>, ApiError> {
    let m = body.get("mock").filter(|m| m.is_object());
    let resource = state.raw["Resource"].as_str().unwrap_or_default();
    let Some(m) = m else {
        return unmocked(state, resource).map(|()| None);
    };
    if body["revealSecrets"].as_bool() == Some(true) {
        return Err(bad(
            "ValidationException",
            "TestState does not support RevealSecrets when a mock is specified.",
        ));
    }
    if !matches!(state.kind, Kind::Task | Kind::Map | Kind::Parallel) {
        let ty = state.kind.name();
        return Err(bad(
            "ValidationException",
            format!("State type '{ty}' is not supported when a mock is specified"),
        ));
    }
    let (result, error) = (m.get("result"), m.get("errorOutput"));
    let mock = match (result, error) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "ValidationException",
                "A test mock should have only one of the following fields: [result, errorOutput].",
            ));
        }
        (None, Some(e)) => Mock::Error {
            error: e["error"].as_str().unwrap_or_default().to_string(),
            cause: e["cause"].as_str().unwrap_or_default().to_string(),
        },
        (Some(r), None) => {
            let text = r.as_str().unwrap_or_default();
            let v: Value = serde_json::from_str(text).map_err(|e| {
                bad(
                    "ValidationException",
                    format!("Mocked result is not JSON: {e}"),
                )
            })?;
            check_result(&v, state, m["fieldValidationMode"].as_str())?;
            Mock::Result(v)
        }
        (None, None) => {
            return Err(bad(
                "ValidationException",
                "A test mock should have one of the following fields: [result, errorOutput].",
            ));
        }
    };
    check_caused_by(body, state)?;
    Ok(Some(mock))
}

/// A state without a mock: Map and Parallel states, `.sync` and `.waitForTaskToken` tasks and
/// activities are refused.
fn unmocked(state: &asl::State<'_>, resource: &str) -> Result<(), ApiError> {
    if matches!(state.kind, Kind::Map | Kind::Parallel) {
        return Err(bad("InvalidDefinition", MAP_OR_PARALLEL));
    }
    if needs_mock(resource) {
        return Err(bad(
            "InvalidDefinition",
            format!(
                "TestState API does not support the resource '{resource}' without a mock: .sync and .waitForTaskToken integrations and activities are tested with a mock"
            ),
        ));
    }
    Ok(())
}

/// Integration patterns and activities that TestState only runs with a mock.
fn needs_mock(resource: &str) -> bool {
    let (_, pattern) = resource
        .strip_prefix("arn:aws:states:::")
        .and_then(|r| r.split_once('.'))
        .unwrap_or(("", ""));
    pattern.starts_with("sync")
        || pattern.starts_with("waitForTaskToken")
        || resource.contains(":activity:")
}

/// A mocked result of the shape the state gives: an array for a Map (an object when it writes
/// its results elsewhere) and a Parallel (one per branch), the call's response for a Task.
fn check_result(v: &Value, state: &asl::State<'_>, mode: Option<&str>) -> Result<(), ApiError> {
    let invalid = |m: &str| Err(bad("ValidationException", m.to_string()));
    match state.kind {
        Kind::Map if state.raw.get("ResultWriter").is_some() && !v.is_object() => {
            return invalid("Mocked result must be a JSON object.");
        }
        Kind::Map if state.raw.get("ResultWriter").is_some() => {}
        Kind::Map if !v.is_array() => return invalid("Mocked result must be an array."),
        Kind::Parallel => match v.as_array() {
            None => return invalid("Mocked result must be an array."),
            Some(a) if a.len() != state.scopes.len() => {
                return invalid(
                    "Mocked result must contain the same number of items as number of Parallel branches.",
                );
            }
            _ => {}
        },
        Kind::Task => {
            let mode = Mode::of(mode).ok_or_else(|| {
                bad(
                    "ValidationException",
                    format!("1 validation error detected: Value '{}' at 'mock.fieldValidationMode' failed to satisfy constraint: Member must satisfy enum value set: [STRICT, PRESENT, NONE]", mode.unwrap_or_default()),
                )
            })?;
            let resource = state.raw["Resource"].as_str().unwrap_or_default();
            if let Some(shape) = shapes::shape_of(resource) {
                shapes::check(v, &shape, mode).map_err(|m| bad("ValidationException", m))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `errorCausedByState` names a state inside the Map or Parallel state tested.
fn check_caused_by(body: &Value, state: &asl::State<'_>) -> Result<(), ApiError> {
    let Some(by) = body["stateConfiguration"]["errorCausedByState"].as_str() else {
        return Ok(());
    };
    let inside = state.scopes.iter().any(|s| s.find(by).is_some());
    if !inside {
        return Err(bad(
            "ValidationException",
            format!(
                "errorCausedByState '{by}' is not a state inside the Map or Parallel state '{}'",
                state.name
            ),
        ));
    }
    Ok(())
}

/// The API's answer: values as JSON text; the inspection data at DEBUG and TRACE.
fn answer(p: probe::Probed, level: &str) -> Value {
    let text = |v: &Value| Value::String(v.to_string());
    let mut out = json!({"status": p.status});
    let o = out.as_object_mut().unwrap();
    if let Some(v) = &p.output {
        o.insert("output".into(), text(v));
    }
    for (k, v) in [
        ("error", &p.error),
        ("cause", &p.cause),
        ("nextState", &p.next),
    ] {
        if let Some(v) = v {
            o.insert(k.into(), json!(v));
        }
    }
    if level != "INFO" {
        let mut data = Map::new();
        for (k, v) in &p.data {
            let numeric = matches!(
                k.as_str(),
                "maxConcurrency" | "toleratedFailureCount" | "toleratedFailurePercentage"
            );
            data.insert(k.clone(), if numeric { v.clone() } else { text(v) });
        }
        if let Some(d) = &p.details {
            data.insert("errorDetails".into(), d.clone());
        }
        o.insert("inspectionData".into(), Value::Object(data));
    }
    out
}
