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

use super::{Execution, Status, TaskResult, Tasks};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

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
pub struct Mocked<'a> {
    mocks: &'a BTreeMap<String, Vec<Mock>>,
    used: BTreeMap<String, usize>,
    pub calls: BTreeMap<String, Vec<Value>>,
}

impl<'a> Mocked<'a> {
    pub fn new(mocks: &'a BTreeMap<String, Vec<Mock>>) -> Self {
        Mocked { mocks, used: BTreeMap::new(), calls: BTreeMap::new() }
    }
}

impl Tasks for Mocked<'_> {
    fn call(&mut self, state: &str, resource: &str, arguments: &Value, _token: Option<&str>) -> TaskResult {
        self.calls.entry(state.to_string()).or_default().push(arguments.clone());
        let Some(list) = self.mocks.get(state).filter(|l| !l.is_empty()) else {
            return TaskResult::Throw { error: "States.TaskFailed".into(), cause: format!("no mock for state {state:?} ({resource})") };
        };
        let n = self.used.entry(state.to_string()).or_insert(0);
        let mock = &list[(*n).min(list.len() - 1)];
        *n += 1;
        match mock {
            Mock::Return(v) => TaskResult::Return(v.clone()),
            Mock::Throw { error, cause } => TaskResult::Throw { error: error.clone(), cause: cause.clone() },
        }
    }
}

/// `a` contains everything `b` has (objects by key, recursively; anything else equal).
fn contains(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => y.iter().all(|(k, v)| x.get(k).is_some_and(|w| contains(w, v))),
        _ => a == b,
    }
}

/// What differs from the expectation (empty: the scenario passes).
pub fn check(exec: &Execution, calls: &BTreeMap<String, Vec<Value>>, expect: &Expect) -> Vec<String> {
    let mut out = Vec::new();
    let status = match exec.status {
        Status::Succeeded => "SUCCEEDED",
        Status::Failed => "FAILED",
    };
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
            out.push(format!("calls of {state:?}: {}, expected (containing) {}", Value::Array(got), Value::Array(want.clone())));
        }
    }
    out
}
