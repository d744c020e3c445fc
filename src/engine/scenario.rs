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
use serde_json::{Map, Value};
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
    pub path: Option<Vec<String>>,
    /// For the named states, the arguments of each call must contain these fields.
    #[serde(default)]
    pub calls: BTreeMap<String, Vec<Value>>,
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
    if let Some(p) = &expect.path {
        if &exec.path != p {
            out.push(format!("path {:?}, expected {p:?}", exec.path));
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
}
