//! Scenarios for `deploy test`: an input, mocked answers per Task state (in order; the last
//! one repeats), and what must come out: status, output, error, the path of states, and the
//! arguments chosen tasks were called with.
//!
//! ```json
//! { "description": "approved as admin",
//!   "vars": { "query_language": "jsonata" },
//!   "input": { "username": "john-doe" },
//!   "mocks": { "SNS Publish": [ { "Return": { "admin": true } } ] },
//!   "expect": { "status": "SUCCEEDED", "path": ["SNS Publish", "CreateUser", "AddUserToGroup"],
//!               "calls": { "AddUserToGroup": [ { "GroupName": "admins-group" } ] } } }
//! ```

use super::{Execution, TaskCall, TaskResult, Tasks};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub description: String,
    /// Stack variables for this scenario (e.g. which definition).
    #[serde(default)]
    pub vars: Map<String, Value>,
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub mocks: BTreeMap<String, Vec<Mock>>,
    pub expect: Expect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Mock {
    Return(Value),
    Throw {
        #[serde(rename = "Error")]
        error: String,
        #[serde(rename = "Cause", default)]
        cause: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// SUCCEEDED or FAILED
    pub status: String,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub path: Option<Vec<String>>,
    /// false: the path's states in any order (a recording of branches or iterations that ran
    /// at once, whose interleaving is the scheduler's, not the workflow's behaviour).
    #[serde(default = "yes")]
    pub path_in_order: bool,
    /// For the named states, the arguments of each call must contain these fields.
    #[serde(default)]
    pub calls: BTreeMap<String, Vec<Value>>,
}

fn yes() -> bool {
    true
}

/// Answers tasks from the scenario's mocks and records every call.
pub struct Mocked {
    mocks: BTreeMap<String, Vec<Mock>>,
    used: Mutex<BTreeMap<String, usize>>,
    calls: Mutex<BTreeMap<String, Vec<Value>>>,
}

impl Mocked {
    pub fn new(mocks: BTreeMap<String, Vec<Mock>>) -> Self {
        Mocked {
            mocks,
            used: Mutex::default(),
            calls: Mutex::default(),
        }
    }

    /// The arguments of every call, per state, in call order.
    pub fn calls(&self) -> BTreeMap<String, Vec<Value>> {
        self.calls.lock().unwrap().clone()
    }

    /// The next mocked answer for a state (the last one repeats).
    pub fn answer(&self, state: &str) -> Option<TaskResult> {
        let list = self.mocks.get(state).filter(|l| !l.is_empty())?;
        let mut used = self.used.lock().unwrap();
        let n = used.entry(state.to_string()).or_insert(0);
        let mock = &list[(*n).min(list.len() - 1)];
        *n += 1;
        Some(match mock {
            Mock::Return(v) => TaskResult::Return(v.clone()),
            Mock::Throw { error, cause } => TaskResult::Throw {
                error: error.clone(),
                cause: cause.clone(),
            },
        })
    }
}

#[async_trait::async_trait]
impl Tasks for Mocked {
    async fn call(&self, call: TaskCall<'_>) -> TaskResult {
        self.calls
            .lock()
            .unwrap()
            .entry(call.state.to_string())
            .or_default()
            .push(call.arguments.clone());
        self.answer(call.state)
            .unwrap_or_else(|| TaskResult::Throw {
                error: "States.TaskFailed".into(),
                cause: format!("no mock for state {:?} ({})", call.state, call.resource),
            })
    }
}

/// `a` contains everything `b` has (objects by key, recursively; anything else equal).
fn contains(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => y
            .iter()
            .all(|(k, v)| x.get(k).is_some_and(|w| contains(w, v))),
        _ => a == b,
    }
}

/// What differs from the expectation (empty: the scenario passes).
pub fn check(
    exec: &Execution,
    calls: &BTreeMap<String, Vec<Value>>,
    expect: &Expect,
) -> Vec<String> {
    let mut out = Vec::new();
    let status = exec.status.name();
    if status != expect.status {
        out.push(format!(
            "status {status} ({}: {}), expected {}",
            exec.error.as_deref().unwrap_or(""),
            exec.cause.as_deref().unwrap_or(""),
            expect.status
        ));
    }
    if let Some(o) = &expect.output {
        if &exec.output != o {
            out.push(format!("output {}, expected {o}", exec.output));
        }
    }
    if let Some(e) = &expect.error {
        if exec.error.as_deref() != Some(e.as_str()) {
            out.push(format!("error {:?}, expected {e:?}", exec.error));
        }
    }
    if let Some(c) = &expect.cause {
        if exec.cause.as_deref() != Some(c.as_str()) {
            out.push(format!("cause {:?}, expected {c:?}", exec.cause));
        }
    }
    if let Some(p) = &expect.path {
        if !expect.path_in_order {
            if let Some(d) = count_difference(&exec.path, p) {
                out.push(d);
            }
        } else if &exec.path != p {
            out.push(path_difference(&exec.path, p));
        }
    }
    for (state, want) in &expect.calls {
        let got = calls.get(state).cloned().unwrap_or_default();
        if got.len() != want.len() || !got.iter().zip(want).all(|(g, w)| contains(g, w)) {
            out.push(format!(
                "calls of {state:?}: {}, expected (containing) {}",
                Value::Array(got),
                Value::Array(want.clone())
            ));
        }
    }
    out
}

/// Where two paths part: the first state entered other than expected, named.
fn path_difference(got: &[String], want: &[String]) -> String {
    let at = got.iter().zip(want).take_while(|(g, w)| g == w).count();
    let before = match at {
        0 => "first".to_string(),
        n => format!("after {:?} (step {})", got[n - 1], n + 1),
    };
    match (got.get(at), want.get(at)) {
        (Some(g), Some(w)) => format!("path differs {before}: entered {g:?}, expected {w:?}"),
        (None, Some(w)) => format!("path ends {before}: expected {w:?} next"),
        (Some(g), None) => format!("path goes on {before}: entered {g:?}, expected the end"),
        (None, None) => "path differs".to_string(),
    }
}

/// The first state (in the expected order) entered another number of times than expected.
fn count_difference(got: &[String], want: &[String]) -> Option<String> {
    let count = |p: &[String], s: &String| p.iter().filter(|x| *x == s).count();
    want.iter()
        .chain(got)
        .find(|s| count(got, s) != count(want, s))
        .map(|s| {
            format!(
                "path differs: entered {s:?} {} time(s), expected {}",
                count(got, s),
                count(want, s)
            )
        })
}

/// The event types that end a task, and how each becomes a mock.
fn task_result(event: &Value) -> Option<Mock> {
    let d = &event["details"];
    let text = |k: &str| d[k].as_str().unwrap_or_default().to_string();
    match event["type"].as_str()? {
        "TaskSucceeded" | "LambdaFunctionSucceeded" | "ActivitySucceeded" => {
            let out = d["output"].as_str().unwrap_or("null");
            Some(Mock::Return(
                serde_json::from_str(out).unwrap_or(Value::String(out.into())),
            ))
        }
        "TaskFailed"
        | "TaskStartFailed"
        | "TaskSubmitFailed"
        | "LambdaFunctionFailed"
        | "LambdaFunctionStartFailed"
        | "LambdaFunctionScheduleFailed"
        | "ActivityFailed" => Some(Mock::Throw {
            error: text("error"),
            cause: text("cause"),
        }),
        "TaskTimedOut" | "LambdaFunctionTimedOut" | "ActivityTimedOut" => Some(Mock::Throw {
            error: match text("error") {
                e if e.is_empty() => "States.Timeout".into(),
                e => e,
            },
            cause: text("cause"),
        }),
        _ => None,
    }
}

fn is_scheduled(t: &str) -> bool {
    matches!(
        t,
        "TaskScheduled" | "LambdaFunctionScheduled" | "ActivityScheduled"
    )
}

/// A scenario recorded from a finished execution: its history's events (as
/// `execution::event_json` writes them), turned into the execution's input, every task's answer
/// as a mock of its state in the order they came (retries included), and as expectations the
/// states entered, the status and the output (or error and cause). A task's state is found by
/// following `previousEventId` back from its answer to its scheduling and on to the state
/// entered, as AWS chains the events of each branch.
pub fn from_history(events: &[Value], description: String) -> Result<Value, String> {
    let chains = crate::execution::Chains::new(events);
    if let Some(e) = events.iter().find(|e| e["details"]["truncated"] == true) {
        return Err(format!(
            "the history is truncated (event {} {}: its data is over AWS's 256 KiB limit), so the execution cannot be replayed from it",
            e["id"],
            e["type"].as_str().unwrap_or_default()
        ));
    }
    let started = events
        .iter()
        .find(|e| e["type"] == "ExecutionStarted")
        .ok_or("the history has no ExecutionStarted event")?;
    let input: Value = serde_json::from_str(started["details"]["input"].as_str().unwrap_or("{}"))
        .unwrap_or(Value::Null);
    let mut mocks: Map<String, Value> = Map::new();
    let mut path = Vec::new();
    for e in events {
        let t = e["type"].as_str().unwrap_or_default();
        if t.ends_with("StateEntered") {
            path.push(Value::String(
                e["details"]["name"].as_str().unwrap_or_default().into(),
            ));
            continue;
        }
        let Some(mock) = task_result(e) else { continue };
        let state = chains
            .back(e, is_scheduled)
            .and_then(|scheduled| chains.back(scheduled, |t| t.ends_with("StateEntered")))
            .or_else(|| chains.back(e, |t| t.ends_with("StateEntered")))
            .and_then(|entered| entered["details"]["name"].as_str())
            .ok_or_else(|| format!("event {}: {t} of no state the history names", e["id"]))?;
        let as_json = match mock {
            Mock::Return(v) => serde_json::json!({ "Return": v }),
            Mock::Throw { error, cause } => {
                serde_json::json!({ "Throw": { "Error": error, "Cause": cause } })
            }
        };
        let answers = mocks.entry(state.to_string()).or_insert_with(|| json!([]));
        answers.as_array_mut().expect("an array").push(as_json);
    }
    let mut expect = outcome(events)?;
    expect.insert("path".into(), Value::Array(path));
    let concurrent = events.iter().any(|e| {
        matches!(
            e["type"].as_str(),
            Some("ParallelStateStarted" | "MapStateStarted" | "MapRunStarted")
        )
    });
    if concurrent {
        expect.insert("path_in_order".into(), Value::Bool(false));
    }
    Ok(json!({"description": description, "input": input, "mocks": mocks, "expect": expect}))
}

/// What a recorded execution ended with, as a scenario expects it: status, and the output or
/// the error and cause.
fn outcome(events: &[Value]) -> Result<Map<String, Value>, String> {
    let end = events.last().ok_or("the history is empty")?;
    let d = &end["details"];
    let mut expect = Map::new();
    match end["type"].as_str().unwrap_or_default() {
        "ExecutionSucceeded" => {
            expect.insert("status".into(), "SUCCEEDED".into());
            let out = d["output"].as_str().unwrap_or("null");
            expect.insert(
                "output".into(),
                serde_json::from_str(out).unwrap_or(Value::String(out.into())),
            );
        }
        t @ ("ExecutionFailed" | "ExecutionTimedOut" | "ExecutionAborted") => {
            let status = match t {
                "ExecutionFailed" => "FAILED",
                "ExecutionTimedOut" => "TIMED_OUT",
                _ => "ABORTED",
            };
            expect.insert("status".into(), status.into());
            for k in ["error", "cause"] {
                if let Some(v) = d[k].as_str() {
                    expect.insert(k.into(), v.into());
                }
            }
        }
        other => {
            return Err(format!(
                "the execution has not ended (its last event is {other}): record it once it has"
            ));
        }
    }
    Ok(expect)
}

/// The same recording as a Step Functions Local mock configuration (`MockConfigFile`): one
/// test case named `case` for `machine`, each state's answers as a mocked response whose
/// invocation numbers are the order they came in.
pub fn to_sfn_local(scenario: &Value, machine: &str, case: &str) -> Value {
    let mut cases = Map::new();
    let mut responses = Map::new();
    for (state, answers) in scenario["mocks"].as_object().into_iter().flatten() {
        let name = format!("{case}: {state}");
        let by_call: Map<String, Value> = answers
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, a)| (i.to_string(), a.clone()))
            .collect();
        cases.insert(state.clone(), Value::String(name.clone()));
        responses.insert(name, Value::Object(by_call));
    }
    serde_json::json!({
        "StateMachines": { machine: { "TestCases": { case: cases } } },
        "MockedResponses": responses,
    })
}

/// Test cases from a Step Functions Local mock configuration file:
/// `{"StateMachines": {"<name>": {"TestCases": {"<case>": {"<state>": "<response>"}}}},
///   "MockedResponses": {"<response>": {"0": {"Return": ...}, "1-2": {"Throw": ...}}}}`.
/// Each case becomes (case name, mocks per state, in call order).
pub fn from_sfn_local(
    config: &Value,
    machine: &str,
) -> Result<Vec<(String, BTreeMap<String, Vec<Mock>>)>, String> {
    let machines = config["StateMachines"]
        .as_object()
        .ok_or("no StateMachines in the mock configuration")?;
    let sm = machines.get(machine).ok_or_else(|| {
        format!(
            "the mock configuration has no state machine {machine:?} (it has: {})",
            machines.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    let responses = config["MockedResponses"]
        .as_object()
        .ok_or("no MockedResponses in the mock configuration")?;
    let mut out = Vec::new();
    for (case, states) in sm["TestCases"]
        .as_object()
        .ok_or("no TestCases for the state machine")?
    {
        let mut mocks = BTreeMap::new();
        for (state, response) in states
            .as_object()
            .ok_or_else(|| format!("test case {case}: an object of state -> response"))?
        {
            let name = response
                .as_str()
                .ok_or_else(|| format!("test case {case}, state {state}: a response name"))?;
            let r = responses
                .get(name)
                .and_then(|r| r.as_object())
                .ok_or_else(|| format!("no mocked response {name:?}"))?;
            // keys are invocation numbers ("0") or ranges ("1-2"), 0-based
            let mut by_call: BTreeMap<usize, Mock> = BTreeMap::new();
            for (k, v) in r {
                let (from, to) = match k.split_once('-') {
                    Some((a, b)) => (a.trim().parse::<usize>(), b.trim().parse::<usize>()),
                    None => (k.trim().parse::<usize>(), k.trim().parse::<usize>()),
                };
                let (from, to) = (
                    from.map_err(|_| {
                        format!("{name}: {k:?} is not an invocation number or range")
                    })?,
                    to.map_err(|_| format!("{name}: bad range {k:?}"))?,
                );
                let mock: Mock =
                    serde_json::from_value(v.clone()).map_err(|e| format!("{name} {k}: {e}"))?;
                for i in from..=to {
                    by_call.insert(i, mock.clone());
                }
            }
            if by_call.keys().copied().ne(0..by_call.len()) {
                return Err(format!(
                    "{name}: invocation numbers must run 0, 1, 2... without gaps"
                ));
            }
            mocks.insert(state.clone(), by_call.into_values().collect());
        }
        out.push((case.clone(), mocks));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sfn_local_mock_configuration_is_read() {
        let config = json!({
            "StateMachines": {"create-new-user": {"TestCases": {"Approve": {"SNS Publish": "Admin"}, "Flaky": {"CreateUser": "FailTwice"}}}},
            "MockedResponses": {
                "Admin": {"0": {"Return": {"admin": true}}},
                "FailTwice": {"0-1": {"Throw": {"Error": "IAM.ServiceFailure", "Cause": "x"}}, "2": {"Return": {}}}}});
        let cases = from_sfn_local(&config, "create-new-user").unwrap();
        assert_eq!(cases.len(), 2);
        let flaky = &cases.iter().find(|(n, _)| n == "Flaky").unwrap().1["CreateUser"];
        assert_eq!(flaky.len(), 3);
        assert!(matches!(&flaky[1], Mock::Throw { error, .. } if error == "IAM.ServiceFailure"));
        assert!(matches!(&flaky[2], Mock::Return(_)));
        assert!(
            from_sfn_local(&config, "nope")
                .unwrap_err()
                .contains("no state machine \"nope\" (it has: create-new-user)")
        );
        let gap = json!({"StateMachines": {"m": {"TestCases": {"c": {"S": "R"}}}}, "MockedResponses": {"R": {"1": {"Return": 1}}}});
        assert!(
            from_sfn_local(&gap, "m")
                .unwrap_err()
                .contains("without gaps")
        );
    }

    fn ev(id: u64, prev: u64, t: &str, details: Value) -> Value {
        json!({"id": id, "previousEventId": prev, "type": t, "timestamp": 0.0, "details": details})
    }

    #[test]
    fn a_history_becomes_mocks_per_state_by_its_event_chains() {
        // two branches at once, B's task answering first: each answer goes to its own state
        let events = vec![
            ev(1, 0, "ExecutionStarted", json!({"input": "{\"x\":1}"})),
            ev(2, 1, "ParallelStateEntered", json!({"name": "Both"})),
            ev(3, 2, "ParallelStateStarted", json!({})),
            ev(4, 3, "TaskStateEntered", json!({"name": "A"})),
            ev(5, 3, "TaskStateEntered", json!({"name": "B"})),
            ev(6, 4, "TaskScheduled", json!({"resourceType": "lambda"})),
            ev(7, 5, "TaskScheduled", json!({"resourceType": "lambda"})),
            ev(8, 7, "TaskSucceeded", json!({"output": "{\"b\":2}"})),
            ev(
                9,
                6,
                "TaskFailed",
                json!({"error": "Boom", "cause": "once"}),
            ),
            ev(10, 9, "TaskScheduled", json!({"resourceType": "lambda"})),
            ev(11, 10, "TaskSucceeded", json!({"output": "{\"a\":1}"})),
            ev(12, 11, "TaskStateExited", json!({"name": "A"})),
            ev(13, 8, "TaskStateExited", json!({"name": "B"})),
            ev(14, 13, "ParallelStateSucceeded", json!({})),
            ev(15, 14, "ParallelStateExited", json!({"name": "Both"})),
            ev(
                16,
                15,
                "ExecutionSucceeded",
                json!({"output": "[{\"a\":1},{\"b\":2}]"}),
            ),
        ];
        let sc = from_history(&events, "d".into()).unwrap();
        assert_eq!(sc["input"], json!({"x": 1}));
        assert_eq!(
            sc["mocks"],
            json!({"B": [{"Return": {"b": 2}}],
                   "A": [{"Throw": {"Error": "Boom", "Cause": "once"}}, {"Return": {"a": 1}}]})
        );
        assert_eq!(sc["expect"]["path"], json!(["Both", "A", "B"]));
        assert_eq!(sc["expect"]["path_in_order"], json!(false));
        assert_eq!(sc["expect"]["output"], json!([{"a": 1}, {"b": 2}]));
        // it reads back as a scenario
        let parsed: Scenario = serde_json::from_value(sc.clone()).unwrap();
        assert_eq!(parsed.mocks["A"].len(), 2);
        // and as a mock configuration, invocations numbered in order
        let config = to_sfn_local(&sc, "m", "case");
        let cases = from_sfn_local(&config, "m").unwrap();
        assert_eq!(cases[0].1["A"].len(), 2);

        let running = &events[..8];
        assert!(
            from_history(running, "d".into())
                .unwrap_err()
                .contains("has not ended")
        );
        let mut truncated = events.clone();
        truncated[7]["details"]["truncated"] = json!(true);
        assert!(
            from_history(&truncated, "d".into())
                .unwrap_err()
                .contains("truncated (event 8 TaskSucceeded")
        );
    }

    #[test]
    fn a_path_in_any_order_still_counts_each_state() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            count_difference(&p(&["A", "B", "C"]), &p(&["A", "C", "B"])),
            None
        );
        assert_eq!(
            count_difference(&p(&["A", "B"]), &p(&["A", "C"])).unwrap(),
            "path differs: entered \"C\" 0 time(s), expected 1"
        );
        assert_eq!(
            path_difference(&p(&["A", "B"]), &p(&["A", "C"])),
            "path differs after \"A\" (step 2): entered \"B\", expected \"C\""
        );
    }
}
