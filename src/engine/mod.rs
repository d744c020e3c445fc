//! A local Step Functions interpreter for JSONata and JSONPath workflows: Pass, Task, Choice, Wait,
//! Succeed, Fail, Parallel and Map; Retry (interval, backoff, max attempts, max delay) and
//! Catch; Arguments / Output / Assign / Condition with `$states` and variables (a Parallel
//! branch or Map iteration reads the outer variables and keeps its own assignments); the
//! context object; history events named as AWS names them. Time is virtual: a Wait or a retry
//! backoff advances a clock instead of sleeping. Tasks are answered by a [`Tasks`] provider
//! (mocks in `deploy test`).

pub mod jsonata;
pub mod jsonpath;
pub mod scenario;

use serde_json::{Map, Value, json};

/// What a task answered.
pub enum TaskResult {
    Return(Value),
    Throw { error: String, cause: String },
}

/// Answers Task states.
pub trait Tasks {
    fn call(&mut self, state: &str, resource: &str, arguments: &Value, token: Option<&str>) -> TaskResult;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub id: usize,
    #[serde(rename = "type")]
    pub kind: String,
    /// Seconds since the execution started, on the virtual clock.
    pub at: f64,
    pub details: Value,
}

#[derive(Debug, Clone)]
pub struct Execution {
    pub status: Status,
    pub output: Value,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// States entered, in order (nested ones included).
    pub path: Vec<String>,
    pub events: Vec<Event>,
    /// Virtual seconds the execution took.
    pub seconds: f64,
}

/// A failure travelling up: an error name and its cause.
#[derive(Debug, Clone)]
struct Failure {
    error: String,
    cause: String,
}

fn fail(error: &str, cause: impl Into<String>) -> Failure {
    Failure { error: error.into(), cause: cause.into() }
}

struct Run<'a> {
    tasks: &'a mut dyn Tasks,
    clock: f64,
    events: Vec<Event>,
    path: Vec<String>,
    context: Value,
    transitions: usize,
    tokens: usize,
    /// The machine's query language (a state may say otherwise for itself).
    lang: String,
}

/// Variables visible in a scope: the outer ones (read-only) and this scope's own.
#[derive(Clone, Default)]
struct Vars {
    outer: Map<String, Value>,
    own: Map<String, Value>,
}

impl Vars {
    fn all(&self) -> Map<String, Value> {
        let mut m = self.outer.clone();
        m.extend(self.own.clone());
        m
    }
    fn nested(&self) -> Vars {
        Vars { outer: self.all(), own: Map::new() }
    }
}

const MAX_TRANSITIONS: usize = 25_000;

impl Run<'_> {
    fn event(&mut self, kind: &str, details: Value) {
        let id = self.events.len() + 1;
        self.events.push(Event { id, kind: kind.into(), at: self.clock, details });
    }

    fn states_var(&self, input: &Value, name: &str, extra: &[(&str, Value)]) -> Value {
        let mut context = self.context.clone();
        context["State"] = json!({"Name": name, "EnteredTime": format!("+{:.3}s", self.clock)});
        let mut s = json!({"input": input, "context": context});
        for (k, v) in extra {
            s[*k] = v.clone();
        }
        s
    }

    fn lang_of(&self, s: &Value) -> String {
        s["QueryLanguage"].as_str().map(str::to_string).unwrap_or_else(|| self.lang.clone())
    }

    fn context_for(&self, name: &str, extra: &[(&str, Value)]) -> Value {
        let mut c = self.states_var(&Value::Null, name, &[])["context"].clone();
        for (k, v) in extra {
            c[*k] = v.clone();
        }
        c
    }

    /// JSONPath: InputPath (a null InputPath gives `{}`).
    fn jp_input(&self, s: &Value, input: &Value, name: &str, vars: &Vars) -> Result<Value, Failure> {
        match s.get("InputPath") {
            None => Ok(input.clone()),
            Some(Value::Null) => Ok(json!({})),
            Some(p) => jsonpath::expression(p.as_str().unwrap_or("$"), input, &self.context_for(name, &[]), &vars.all())
                .map_err(|m| fail("States.Runtime", m)),
        }
    }

    /// JSONPath: a payload template (`Parameters`, `ItemSelector`, `ResultSelector`).
    fn jp_template(&self, t: &Value, over: &Value, context: &Value, vars: &Vars) -> Result<Value, Failure> {
        jsonpath::template(t, over, context, &vars.all()).map_err(|m| fail("States.Runtime", m))
    }

    /// JSONPath: ResultSelector, ResultPath and OutputPath around a state's result.
    fn jp_output(&self, s: &Value, input: &Value, result: Option<Value>, name: &str, vars: &Vars) -> Result<Value, Failure> {
        let ctx = self.context_for(name, &[]);
        let result = match (result, s.get("ResultSelector")) {
            (Some(r), Some(sel)) => Some(self.jp_template(sel, &r, &ctx, vars)?),
            (r, _) => r,
        };
        let combined = match (result, s.get("ResultPath")) {
            (_, Some(Value::Null)) => input.clone(),
            (Some(r), Some(p)) => {
                jsonpath::set(p.as_str().unwrap_or("$"), input, r).map_err(|m| fail("States.ResultPathMatchFailure", m))?
            }
            (Some(r), None) => r,
            (None, _) => input.clone(),
        };
        match s.get("OutputPath") {
            None => Ok(combined),
            Some(Value::Null) => Ok(json!({})),
            Some(p) => jsonpath::expression(p.as_str().unwrap_or("$"), &combined, &ctx, &vars.all()).map_err(|m| fail("States.Runtime", m)),
        }
    }

    fn eval(&self, template: &Value, states: &Value, vars: &Vars) -> Result<Value, Failure> {
        jsonata::eval_template(template, states, &vars.all()).map_err(|m| fail("States.QueryEvaluationError", m))
    }

    /// Runs a scope (the machine, a branch, an item processor) from its StartAt.
    fn scope(&mut self, body: &Value, input: Value, vars: &mut Vars) -> Result<Value, Failure> {
        let states = body["States"].as_object().ok_or_else(|| fail("States.Runtime", "no States"))?;
        let mut name = body["StartAt"].as_str().ok_or_else(|| fail("States.Runtime", "no StartAt"))?.to_string();
        let mut input = input;
        loop {
            self.transitions += 1;
            if self.transitions > MAX_TRANSITIONS {
                return Err(fail("States.Runtime", format!("more than {MAX_TRANSITIONS} state transitions")));
            }
            let s = states.get(&name).ok_or_else(|| fail("States.Runtime", format!("no state {name}")))?;
            let (output, next) = self.state(&name, s, input, vars)?;
            match next {
                Some(n) => {
                    name = n;
                    input = output;
                }
                None => return Ok(output),
            }
        }
    }

    /// Runs one state; returns its output and the next state (None: the scope ends).
    fn state(&mut self, name: &str, s: &Value, input: Value, vars: &mut Vars) -> Result<(Value, Option<String>), Failure> {
        let ty = s["Type"].as_str().unwrap_or("Pass");
        self.path.push(name.to_string());
        self.event(&format!("{ty}StateEntered"), json!({"name": name, "input": input}));
        let next = s["Next"].as_str().map(str::to_string);
        let jp = self.lang_of(s) == "JSONPath";
        let result = match ty {
            "Pass" if jp => (|| {
                let effective = self.jp_input(s, &input, name, vars)?;
                let result = match (s.get("Result"), s.get("Parameters")) {
                    (Some(r), _) => r.clone(),
                    (None, Some(p)) => self.jp_template(p, &effective, &self.context_for(name, &[]), vars)?,
                    (None, None) => effective,
                };
                self.jp_output(s, &input, Some(result), name, vars)
            })()
            .map(|o| (o, next)),
            "Succeed" | "Wait" | "Choice" if jp => (|| {
                let effective = self.jp_input(s, &input, name, vars)?;
                let ctx = self.context_for(name, &[]);
                let mut to = next.clone();
                if ty == "Wait" {
                    let secs = match (s.get("Seconds"), s.get("SecondsPath")) {
                        (Some(v), _) => v.as_f64().unwrap_or(0.0),
                        (None, Some(p)) => jsonpath::expression(p.as_str().unwrap_or("$"), &effective, &ctx, &vars.all())
                            .map_err(|m| fail("States.Runtime", m))?
                            .as_f64()
                            .unwrap_or(0.0),
                        _ => 0.0,
                    };
                    self.clock += secs.max(0.0);
                }
                if ty == "Choice" {
                    to = None;
                    for r in s["Choices"].as_array().into_iter().flatten() {
                        if jsonpath::rule(r, &effective, &ctx, &vars.all()).map_err(|m| fail("States.Runtime", m))? {
                            to = r["Next"].as_str().map(str::to_string);
                            break;
                        }
                    }
                    to = to.or_else(|| s["Default"].as_str().map(str::to_string));
                    if to.is_none() {
                        return Err(fail("States.NoChoiceMatched", format!("no Choice rule matched in {name}")));
                    }
                }
                let out = self.jp_output(s, &effective, None, name, vars)?;
                Ok((out, if ty == "Succeed" { None } else { to }))
            })(),
            "Fail" if jp => {
                let ctx = self.context_for(name, &[]);
                let pick = |k: &str, kp: &str| -> Option<String> {
                    s[k].as_str().map(str::to_string).or_else(|| {
                        s[kp]
                            .as_str()
                            .and_then(|p| jsonpath::expression(p, &input, &ctx, &vars.all()).ok())
                            .and_then(|v| v.as_str().map(str::to_string))
                    })
                };
                Err(fail(&pick("Error", "ErrorPath").unwrap_or_default(), pick("Cause", "CausePath").unwrap_or_default()))
            }
            "Pass" => self.finish(name, s, &input, None, vars).map(|o| (o, next)),
            "Succeed" => {
                let out = if s.get("Output").is_some() {
                    self.eval(&s["Output"], &self.states_var(&input, name, &[]), vars)?
                } else {
                    input.clone()
                };
                Ok((out, None))
            }
            "Fail" => {
                let st = self.states_var(&input, name, &[]);
                let error = s.get("Error").map(|e| self.eval(e, &st, vars)).transpose()?.and_then(|v| v.as_str().map(str::to_string));
                let cause = s.get("Cause").map(|e| self.eval(e, &st, vars)).transpose()?.and_then(|v| v.as_str().map(str::to_string));
                Err(fail(error.as_deref().unwrap_or_default(), cause.unwrap_or_default()))
            }
            "Wait" => {
                let st = self.states_var(&input, name, &[]);
                let secs = match (s.get("Seconds"), s.get("Timestamp")) {
                    (Some(v), _) => self.eval(v, &st, vars)?.as_f64().ok_or_else(|| fail("States.Runtime", "Seconds is not a number"))?,
                    _ => 0.0,
                };
                self.clock += secs.max(0.0);
                self.finish(name, s, &input, None, vars).map(|o| (o, next))
            }
            "Choice" => {
                let st = self.states_var(&input, name, &[]);
                let mut chosen = None;
                for rule in s["Choices"].as_array().into_iter().flatten() {
                    if self.eval(&rule["Condition"], &st, vars)? == Value::Bool(true) {
                        if let Some(a) = rule.get("Assign") {
                            let assigned = self.eval(a, &st, vars)?;
                            vars.own.extend(assigned.as_object().cloned().unwrap_or_default());
                        }
                        chosen = rule["Next"].as_str().map(str::to_string);
                        break;
                    }
                }
                match chosen.or_else(|| s["Default"].as_str().map(str::to_string)) {
                    Some(n) => self.finish(name, s, &input, None, vars).map(|o| (o, Some(n))),
                    None => Err(fail("States.NoChoiceMatched", format!("no Choice rule matched in {name}"))),
                }
            }
            "Task" | "Parallel" | "Map" => self.with_retry(name, ty, s, &input, vars, next),
            other => Err(fail("States.Runtime", format!("unknown state type {other}"))),
        };
        if let Ok((out, _)) = &result {
            self.event(&format!("{ty}StateExited"), json!({"name": name, "output": out}));
        }
        result
    }

    /// Output and Assign of a state that ends normally (Assign sees the same `$states`).
    fn finish(&mut self, name: &str, s: &Value, input: &Value, result: Option<&Value>, vars: &mut Vars) -> Result<Value, Failure> {
        let extra: Vec<(&str, Value)> = result.map(|r| vec![("result", r.clone())]).unwrap_or_default();
        let st = self.states_var(input, name, &extra);
        let output = match s.get("Output") {
            Some(o) => self.eval(o, &st, vars)?,
            None => result.cloned().unwrap_or_else(|| input.clone()),
        };
        if let Some(a) = s.get("Assign") {
            let assigned = self.eval(a, &st, vars)?;
            vars.own.extend(assigned.as_object().cloned().unwrap_or_default());
        }
        Ok(output)
    }

    fn with_retry(
        &mut self,
        name: &str,
        ty: &str,
        s: &Value,
        input: &Value,
        vars: &mut Vars,
        next: Option<String>,
    ) -> Result<(Value, Option<String>), Failure> {
        let mut attempts: Vec<u64> = vec![0; s["Retry"].as_array().map(|r| r.len()).unwrap_or(0)];
        loop {
            let attempt = match ty {
                "Task" => self.task(name, s, input, vars),
                "Parallel" => self.parallel(s, input, name, vars),
                _ => self.map(s, input, name, vars),
            };
            let failure = match attempt {
                Ok(result) if self.lang_of(s) == "JSONPath" => {
                    return self.jp_output(s, input, Some(result), name, vars).map(|o| (o, next));
                }
                Ok(result) => return self.finish(name, s, input, Some(&result), vars).map(|o| (o, next)),
                Err(f) => f,
            };
            // Retry: the first retrier matching the error decides.
            let retriers = s["Retry"].as_array().cloned().unwrap_or_default();
            if let Some((i, r)) = retriers.iter().enumerate().find(|(_, r)| matches(&r["ErrorEquals"], &failure.error)) {
                let max = r["MaxAttempts"].as_u64().unwrap_or(3);
                if attempts[i] < max {
                    let interval = r["IntervalSeconds"].as_f64().unwrap_or(1.0);
                    let rate = r["BackoffRate"].as_f64().unwrap_or(2.0);
                    let mut delay = interval * rate.powi(attempts[i] as i32);
                    if let Some(cap) = r["MaxDelaySeconds"].as_f64() {
                        delay = delay.min(cap);
                    }
                    // FULL jitter waits a random share of the delay; virtual time takes it whole.
                    attempts[i] += 1;
                    self.clock += delay;
                    continue;
                }
            }
            // Catch
            for c in s["Catch"].as_array().into_iter().flatten() {
                if matches(&c["ErrorEquals"], &failure.error) {
                    let error_output = json!({"Error": failure.error, "Cause": failure.cause});
                    if self.lang_of(s) == "JSONPath" {
                        let output = match c.get("ResultPath") {
                            Some(Value::Null) => input.clone(),
                            Some(p) => jsonpath::set(p.as_str().unwrap_or("$"), input, error_output)
                                .map_err(|m| fail("States.ResultPathMatchFailure", m))?,
                            None => error_output,
                        };
                        self.event(&format!("{ty}StateExited"), json!({"name": name, "output": output}));
                        return Ok((output, c["Next"].as_str().map(str::to_string)));
                    }
                    let st = self.states_var(input, name, &[("errorOutput", error_output.clone())]);
                    let output = match c.get("Output") {
                        Some(o) => self.eval(o, &st, vars)?,
                        None => error_output,
                    };
                    if let Some(a) = c.get("Assign") {
                        let assigned = self.eval(a, &st, vars)?;
                        vars.own.extend(assigned.as_object().cloned().unwrap_or_default());
                    }
                    self.event(&format!("{ty}StateExited"), json!({"name": name, "output": output}));
                    return Ok((output, c["Next"].as_str().map(str::to_string)));
                }
            }
            return Err(failure);
        }
    }

    /// What a Task or Parallel state works on: JSONPath InputPath + Parameters, or JSONata Arguments.
    fn arguments(&self, s: &Value, input: &Value, name: &str, st: &Value, vars: &Vars) -> Result<Value, Failure> {
        if self.lang_of(s) == "JSONPath" {
            let effective = self.jp_input(s, input, name, vars)?;
            match s.get("Parameters") {
                Some(p) => self.jp_template(p, &effective, &st["context"], vars),
                None => Ok(effective),
            }
        } else {
            match s.get("Arguments") {
                Some(a) => self.eval(a, st, vars),
                None => Ok(input.clone()),
            }
        }
    }

    fn task(&mut self, name: &str, s: &Value, input: &Value, vars: &Vars) -> Result<Value, Failure> {
        let resource = s["Resource"].as_str().unwrap_or_default().to_string();
        let token = resource.ends_with(".waitForTaskToken").then(|| {
            self.tokens += 1;
            format!("local-token-{}-{}", self.tokens, name.replace(' ', "-"))
        });
        let mut st = self.states_var(input, name, &[]);
        if let Some(t) = &token {
            st["context"]["Task"] = json!({"Token": t});
        }
        let args = self.arguments(s, input, name, &st, vars)?;
        self.event("TaskScheduled", json!({"resource": resource, "parameters": args}));
        self.event("TaskStarted", json!({"resource": resource}));
        match self.tasks.call(name, &resource, &args, token.as_deref()) {
            TaskResult::Return(v) => {
                self.event("TaskSucceeded", json!({"resource": resource, "output": v}));
                Ok(v)
            }
            TaskResult::Throw { error, cause } => {
                self.event("TaskFailed", json!({"resource": resource, "error": error, "cause": cause}));
                Err(Failure { error, cause })
            }
        }
    }

    fn parallel(&mut self, s: &Value, input: &Value, name: &str, vars: &Vars) -> Result<Value, Failure> {
        let st = self.states_var(input, name, &[]);
        let branch_input = self.arguments(s, input, name, &st, vars)?;
        self.event("ParallelStateStarted", json!({}));
        let mut results = Vec::new();
        for b in s["Branches"].as_array().into_iter().flatten() {
            let mut inner = vars.nested();
            match self.scope(b, branch_input.clone(), &mut inner) {
                Ok(v) => results.push(v),
                // A failing branch fails the Parallel state with the branch's own error.
                Err(f) => {
                    self.event("ParallelStateFailed", json!({"error": f.error, "cause": f.cause}));
                    return Err(f);
                }
            }
        }
        self.event("ParallelStateSucceeded", json!({}));
        Ok(Value::Array(results))
    }

    fn map(&mut self, s: &Value, input: &Value, name: &str, vars: &Vars) -> Result<Value, Failure> {
        let st = self.states_var(input, name, &[]);
        let jp = self.lang_of(s) == "JSONPath";
        let effective = if jp { self.jp_input(s, input, name, vars)? } else { input.clone() };
        let items = match (jp, s.get("Items"), s.get("ItemsPath")) {
            (false, Some(i), _) => self.eval(i, &st, vars)?,
            (true, _, Some(p)) => jsonpath::expression(p.as_str().unwrap_or("$"), &effective, &st["context"], &vars.all())
                .map_err(|m| fail("States.Runtime", m))?,
            _ => effective.clone(),
        };
        let items = items.as_array().cloned().ok_or_else(|| fail("States.Runtime", format!("{name}: the items are not an array")))?;
        self.event("MapStateStarted", json!({"length": items.len()}));
        let processor = if s.get("ItemProcessor").is_some() { &s["ItemProcessor"] } else { &s["Iterator"] };
        let mut results = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            self.event("MapIterationStarted", json!({"name": name, "index": i}));
            let mut ist = st.clone();
            ist["context"]["Map"] = json!({"Item": {"Index": i, "Value": item}});
            let selector = s.get("ItemSelector").or(if jp { s.get("Parameters") } else { None });
            let item_input = match (selector, jp) {
                (Some(sel), true) => self.jp_template(sel, &effective, &ist["context"], vars)?,
                (Some(sel), false) => self.eval(sel, &ist, vars)?,
                (None, _) => item,
            };
            let mut inner = vars.nested();
            match self.scope(processor, item_input, &mut inner) {
                Ok(v) => {
                    self.event("MapIterationSucceeded", json!({"name": name, "index": i}));
                    results.push(v);
                }
                Err(f) => {
                    self.event("MapIterationFailed", json!({"name": name, "index": i}));
                    self.event("MapStateFailed", json!({}));
                    return Err(f);
                }
            }
        }
        self.event("MapStateSucceeded", json!({}));
        Ok(Value::Array(results))
    }
}

fn matches(list: &Value, error: &str) -> bool {
    list.as_array().into_iter().flatten().filter_map(|e| e.as_str()).any(|e| {
        e == error
            || e == "States.ALL"
            || (e == "States.TaskFailed" && !error.starts_with("States."))
            || (e == "States.TaskFailed" && error == "States.TaskFailed")
    })
}

/// Runs a JSONata definition to its end.
pub fn execute(definition: &Value, input: Value, name: &str, tasks: &mut dyn Tasks) -> Execution {
    let context = json!({"Execution": {"Id": format!("local:{name}"), "Name": name, "Input": input, "StartTime": "+0s"}, "StateMachine": {"Name": "local"}});
    let lang = definition["QueryLanguage"].as_str().unwrap_or("JSONPath").to_string();
    let mut run = Run { tasks, clock: 0.0, events: Vec::new(), path: Vec::new(), context, transitions: 0, tokens: 0, lang };
    run.event("ExecutionStarted", json!({"input": input}));
    let mut vars = Vars::default();
    let result = run.scope(definition, input, &mut vars);
    let (status, output, error, cause) = match result {
        Ok(out) => {
            run.event("ExecutionSucceeded", json!({"output": out}));
            (Status::Succeeded, out, None, None)
        }
        Err(f) => {
            run.event("ExecutionFailed", json!({"error": f.error, "cause": f.cause}));
            (Status::Failed, Value::Null, Some(f.error), Some(f.cause))
        }
    };
    Execution { status, output, error, cause, path: run.path, events: run.events, seconds: run.clock }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Script(Vec<TaskResult>);
    impl Tasks for Script {
        fn call(&mut self, _: &str, _: &str, args: &Value, _: Option<&str>) -> TaskResult {
            if self.0.is_empty() {
                return TaskResult::Return(args.clone());
            }
            self.0.remove(0)
        }
    }

    fn throw(e: &str) -> TaskResult {
        TaskResult::Throw { error: e.into(), cause: "because".into() }
    }

    #[test]
    fn catch_output_and_assign_see_the_error() {
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "x", "Next": "Ok",
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled", "Output": "{% $states.errorOutput %}", "Assign": {"why": "{% $states.errorOutput.Cause %}"}}]},
            "Ok": {"Type": "Succeed"},
            "Handled": {"Type": "Pass", "Output": "{% {'error': $states.input.Error, 'why': $why} %}", "End": true}}});
        let e = execute(&def, json!({}), "t", &mut Script(vec![throw("Boom")]));
        assert_eq!(e.status, Status::Succeeded);
        assert_eq!(e.output, json!({"error": "Boom", "why": "because"}));
        assert_eq!(e.path, vec!["T", "Handled"]);
    }

    #[test]
    fn retry_backoff_is_virtual_and_capped() {
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "x", "End": true,
                  "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 10, "BackoffRate": 3, "MaxAttempts": 3, "MaxDelaySeconds": 50}]}}});
        let e = execute(&def, json!({"a": 1}), "t", &mut Script(vec![throw("E"), throw("E"), throw("E")]));
        assert_eq!(e.status, Status::Succeeded);
        assert_eq!(e.seconds, 10.0 + 30.0 + 50.0, "90 s of backoff, the third capped at 50 s");
        let e = execute(&def, json!({}), "t", &mut Script(vec![throw("E"), throw("E"), throw("E"), throw("E")]));
        assert_eq!((e.status, e.error.as_deref()), (Status::Failed, Some("E")));
        let e = execute(&def, json!({}), "t", &mut Script(vec![throw("Other")]));
        assert_eq!(e.seconds, 0.0, "an error no retrier names is not retried");
    }

    #[test]
    fn branches_read_outer_variables_and_keep_their_own() {
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {
            "A": {"Type": "Pass", "Assign": {"x": 1}, "Next": "P"},
            "P": {"Type": "Parallel", "Next": "After", "Branches": [
                {"StartAt": "B1", "States": {"B1": {"Type": "Pass", "Assign": {"y": 2}, "Output": "{% $x + 1 %}", "End": true}}},
                {"StartAt": "B2", "States": {"B2": {"Type": "Pass", "Output": "{% $x + 10 %}", "End": true}}}]},
            "After": {"Type": "Pass", "Output": "{% {'branches': $states.input, 'x': $x, 'y': $y} %}", "End": true}}});
        let e = execute(&def, json!({}), "t", &mut Script(vec![]));
        assert_eq!(e.output, json!({"branches": [2, 11], "x": 1}), "$y stayed inside its branch (undefined drops out)");
    }

    #[test]
    fn choice_without_match_fails() {
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n > 5 %}", "Next": "S"}]}, "S": {"Type": "Succeed"}}});
        let e = execute(&def, json!({"n": 1}), "t", &mut Script(vec![]));
        assert_eq!(e.error.as_deref(), Some("States.NoChoiceMatched"));
    }
}
