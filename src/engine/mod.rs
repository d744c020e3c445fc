//! A local Step Functions interpreter for JSONata and JSONPath workflows: Pass, Task, Choice, Wait,
//! Succeed, Fail, Parallel and Map (branches and iterations run concurrently; MaxConcurrency;
//! tolerated failures); Retry (interval, backoff, max attempts, max delay, full jitter) and
//! Catch; TimeoutSeconds and HeartbeatSeconds; Arguments / Output / Assign / Condition with
//! `$states` and variables (a Parallel branch or Map iteration reads the outer variables and
//! keeps its own assignments), Assign in JSONPath states too; the context object; history events
//! named as AWS names them.
//!
//! Time is tokio's: [`execute_virtual`] runs on a paused clock, so a Wait of an hour or a retry
//! backoff takes no real time (`deploy test`), while the local endpoint (`deploy local`) runs on
//! the real clock. Tasks are answered by a [`Tasks`] provider: mocks in `deploy test`, calls to
//! the local emulator in `deploy local`. A `.waitForTaskToken` task whose provider answers
//! [`TaskResult::AwaitToken`] waits for SendTaskSuccess / SendTaskFailure through [`Callbacks`].

pub mod clock;
#[cfg(test)]
mod conformance;
pub mod jsonata;
pub mod jsonpath;
pub mod scenario;

use crate::asl::{self, Kind};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

/// What a task answered.
#[derive(Debug, Clone)]
pub enum TaskResult {
    Return(Value),
    Throw {
        error: String,
        cause: String,
    },
    /// The call went out; the result comes back with the task token (`.waitForTaskToken`).
    AwaitToken,
}

/// One call of a Task state.
pub struct TaskCall<'a> {
    pub state: &'a str,
    pub resource: &'a str,
    pub arguments: &'a Value,
    pub token: Option<&'a str>,
}

/// Answers Task states.
#[async_trait::async_trait]
pub trait Tasks: Send + Sync {
    async fn call(&self, call: TaskCall<'_>) -> TaskResult;
}

/// What a worker sends back for a task token.
#[derive(Debug)]
pub enum Callback {
    Success(Value),
    Failure { error: String, cause: String },
    Heartbeat,
}

/// Task tokens waiting for an answer, shared by every execution of a local endpoint.
#[derive(Default)]
pub struct Callbacks {
    waiting: Mutex<HashMap<String, mpsc::UnboundedSender<Callback>>>,
}

impl Callbacks {
    fn register(&self, token: &str) -> mpsc::UnboundedReceiver<Callback> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.waiting.lock().unwrap().insert(token.to_string(), tx);
        rx
    }

    fn forget(&self, token: &str) {
        self.waiting.lock().unwrap().remove(token);
    }

    /// Hands an answer to the task waiting for `token`; false if none waits (any more).
    /// Success or failure ends the wait; a heartbeat keeps it.
    pub fn send(&self, token: &str, answer: Callback) -> bool {
        let mut waiting = self.waiting.lock().unwrap();
        let ends = !matches!(answer, Callback::Heartbeat);
        let delivered = waiting.get(token).is_some_and(|tx| tx.send(answer).is_ok());
        // an answered token, or one whose task is gone (its execution was stopped), is dropped
        if ends || !delivered {
            waiting.remove(token);
        }
        delivered
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Succeeded,
    Failed,
    TimedOut,
}

impl Status {
    /// As AWS spells an execution's status.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::TimedOut => "TIMED_OUT",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub id: usize,
    /// The event before it in its own branch (AWS's `previousEventId`): in a Parallel or a
    /// Map, each branch's events follow on from the event that began the branch.
    #[serde(rename = "previousEventId")]
    pub prev: usize,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Seconds since the execution started (on the paused clock, virtual seconds).
    pub at: f64,
    pub details: Details,
}

tokio::task_local! {
    /// The last event of the branch being run (see `Run::branch`).
    static LAST_EVENT: std::cell::Cell<usize>;
    /// Set while a Distributed Map's iterations run: each is a child execution on AWS, with
    /// its own history, so none of their events are the parent's.
    static CHILD_EXECUTION: ();
}

/// An event's details, kept as compact JSON text: a history may hold tens of thousands of
/// events, each with a state's input or output, and text takes a fraction of the memory of
/// the same value as a tree (`deploy local` keeps a thousand histories).
#[derive(Debug, Clone)]
pub struct Details(Box<str>);

impl Details {
    pub fn new(v: &Value) -> Details {
        Details(v.to_string().into_boxed_str())
    }
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).expect("details are JSON written by Details::new")
    }
}

impl serde::Serialize for Details {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

/// The name of an event type, shared by every event of that type (AWS has a few dozen).
fn event_kind(kind: &str) -> &'static str {
    static KINDS: std::sync::LazyLock<Mutex<std::collections::HashSet<&'static str>>> =
        std::sync::LazyLock::new(Default::default);
    let mut kinds = KINDS.lock().unwrap();
    match kinds.get(kind) {
        Some(k) => k,
        None => {
            let k: &'static str = Box::leak(kind.to_string().into_boxed_str());
            kinds.insert(k);
            k
        }
    }
}

/// Events and states entered so far: readable while the execution runs.
#[derive(Default)]
pub struct Journal {
    events: Mutex<Vec<Event>>,
    path: Mutex<Vec<String>>,
}

impl Journal {
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    /// Records an event after `prev` (the event before it in its own branch; 0: the one
    /// recorded last); returns its id.
    pub fn push(&self, kind: &str, at: f64, details: Value, prev: usize) -> usize {
        let mut events = self.events.lock().unwrap();
        let id = events.len() + 1;
        events.push(Event {
            id,
            prev: if prev == 0 { id - 1 } else { prev },
            kind: event_kind(kind),
            at,
            details: Details::new(&details),
        });
        id
    }
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
    /// Seconds the execution took (virtual on the paused clock).
    pub seconds: f64,
}

/// Who is running and how.
pub struct Options {
    pub name: String,
    pub execution_arn: String,
    pub machine_name: String,
    pub machine_arn: String,
    pub role_arn: String,
    /// Multiplies every Wait and retry delay (1 = as written; the local endpoint may shorten them).
    pub time_scale: f64,
    pub callbacks: Option<std::sync::Arc<Callbacks>>,
    /// Cancelled when the execution is stopped or times out: every evaluation in progress
    /// then ends within milliseconds instead of running on.
    pub cancel: jsonata_core::evaluator::CancelToken,
    /// Real time (tokio's), or a virtual clock that runs ahead to the next timer.
    pub clock: clock::Clock,
}

impl Options {
    pub fn local(name: &str) -> Options {
        Options {
            name: name.into(),
            execution_arn: format!("local:{name}"),
            machine_name: "local".into(),
            machine_arn: "local".into(),
            role_arn: String::new(),
            time_scale: 1.0,
            callbacks: None,
            cancel: Default::default(),
            clock: clock::Clock::Real,
        }
    }
}

/// A failure travelling up: an error name and its cause.
#[derive(Debug, Clone)]
struct Failure {
    error: String,
    cause: String,
}

fn fail(error: &str, cause: impl Into<String>) -> Failure {
    Failure {
        error: error.into(),
        cause: cause.into(),
    }
}

struct Run<'a> {
    tasks: &'a dyn Tasks,
    journal: &'a Journal,
    opts: &'a Options,
    clock: clock::Started,
    wall_start: SystemTime,
    context: Value,
    transitions: AtomicUsize,
    /// The machine's query language (a state may say otherwise for itself).
    iso_cache: Mutex<(u64, String)>,
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
        Vars {
            outer: self.all(),
            own: Map::new(),
        }
    }
    fn assign(&mut self, assigned: Value) {
        self.own
            .extend(assigned.as_object().cloned().unwrap_or_default());
    }
}

/// AWS's quotas for one execution: its history holds at most 25,000 events, and a state's
/// input or output at most 256 KiB (as UTF-8 JSON).
pub const MAX_HISTORY: usize = 25_000;
pub const MAX_PAYLOAD: usize = 256 * 1024;
/// Iterations an inline Map runs at once, at most (AWS: 40).
const INLINE_MAP_CONCURRENCY: usize = 40;

/// Whether `v` serialises to more than `limit` bytes (stops counting once past it).
fn larger_than(v: &Value, limit: usize) -> bool {
    struct Count(usize, usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            if self.0 > self.1 {
                Err(std::io::Error::other("over the limit"))
            } else {
                Ok(b.len())
            }
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(&mut Count(0, limit), v).is_err()
}

fn too_large(name: &str) -> Failure {
    fail(
        "States.DataLimitExceeded",
        format!(
            "The state/task '{name}' returned a result with a size exceeding the maximum number of bytes service limit."
        ),
    )
}

fn iso(t: SystemTime) -> String {
    aws_smithy_types::DateTime::from(t)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// A task token that looks like AWS's (long, URL-safe), so tools that spot tokens spot ours.
fn new_token() -> String {
    format!(
        "AQCEAAAAKgAAAAMAAAAAAAAAA{:016x}{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

impl Run<'_> {
    fn now(&self) -> f64 {
        self.clock.elapsed().as_secs_f64()
    }

    /// The wall-clock time now as RFC 3339, formatted once per millisecond.
    fn now_iso(&self) -> String {
        let now = self.wall_start + self.clock.elapsed();
        let ms = now
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut cached = self.iso_cache.lock().unwrap();
        if cached.0 != ms || cached.1.is_empty() {
            *cached = (ms, iso(now));
        }
        cached.1.clone()
    }

    fn event(&self, kind: &str, details: Value) {
        if CHILD_EXECUTION.try_with(|_| ()).is_ok() {
            return;
        }
        let prev = LAST_EVENT.try_with(|c| c.get()).unwrap_or(0);
        let id = self.journal.push(kind, self.now(), details, prev);
        let _ = LAST_EVENT.try_with(|c| c.set(id));
    }

    /// The last event of the branch being run (0 outside an execution).
    fn last_event(&self) -> usize {
        LAST_EVENT.try_with(|c| c.get()).unwrap_or(0)
    }

    /// Runs a branch (a Parallel branch, a Map iteration) whose events follow on from `from`
    /// (the event that began it: ParallelStateStarted, MapStateStarted), not from the other
    /// branches'.
    async fn branch<T>(&self, from: usize, run: impl std::future::Future<Output = T>) -> T {
        LAST_EVENT.scope(std::cell::Cell::new(from), run).await
    }

    /// After branches: what follows comes after the last event any of them recorded.
    fn rejoin(&self) {
        let last = self.journal.len();
        let _ = LAST_EVENT.try_with(|c| c.set(last));
    }

    async fn sleep(&self, seconds: f64) {
        let s = (seconds * self.opts.time_scale).max(0.0);
        if s > 0.0 {
            self.clock.sleep(Duration::from_secs_f64(s.min(1e9))).await;
        }
    }

    fn states_var(&self, input: &Value, name: &str, extra: &[(&str, Value)]) -> Value {
        let mut s = Map::with_capacity(2 + extra.len());
        s.insert("input".into(), input.clone());
        s.insert("context".into(), self.context_for(name, &[]));
        for (k, v) in extra {
            s.insert(k.to_string(), v.clone());
        }
        Value::Object(s)
    }

    /// The context object as a state sees it (`$$` / `$states.context`).
    fn context_for(&self, name: &str, extra: &[(&str, Value)]) -> Value {
        let mut c = self.context.clone();
        c["State"] = json!({"Name": name, "EnteredTime": self.now_iso(), "RetryCount": 0});
        for (k, v) in extra {
            c[*k] = v.clone();
        }
        c
    }

    /// JSONPath: InputPath (a null InputPath gives `{}`).
    fn jp_input(
        &self,
        s: &Value,
        input: &Value,
        name: &str,
        vars: &Vars,
    ) -> Result<Value, Failure> {
        match s.get("InputPath") {
            None => Ok(input.clone()),
            Some(Value::Null) => Ok(json!({})),
            Some(p) => jsonpath::expression(
                p.as_str().unwrap_or("$"),
                input,
                &self.context_for(name, &[]),
                &vars.all(),
            )
            .map_err(|m| fail("States.Runtime", m)),
        }
    }

    /// JSONPath: a payload template (`Parameters`, `ItemSelector`, `ResultSelector`, `Assign`).
    fn jp_template(
        &self,
        t: &Value,
        over: &Value,
        context: &Value,
        vars: &Vars,
    ) -> Result<Value, Failure> {
        jsonpath::template(t, over, context, &vars.all()).map_err(|m| fail("States.Runtime", m))
    }

    /// JSONPath: Assign (`$` is the state's result, or its effective input when it has none),
    /// then ResultPath and OutputPath around the result.
    fn jp_output(
        &self,
        s: &Value,
        input: &Value,
        result: Option<Value>,
        name: &str,
        vars: &mut Vars,
    ) -> Result<Value, Failure> {
        let ctx = self.context_for(name, &[]);
        if let Some(a) = s.get("Assign") {
            let over = result.clone().unwrap_or_else(|| input.clone());
            let assigned = self.jp_template(a, &over, &ctx, vars)?;
            vars.assign(assigned);
        }
        let combined = match (result, s.get("ResultPath")) {
            (_, Some(Value::Null)) => input.clone(),
            (Some(r), Some(p)) => jsonpath::set(p.as_str().unwrap_or("$"), input, r)
                .map_err(|m| fail("States.ResultPathMatchFailure", m))?,
            (Some(r), None) => r,
            (None, _) => input.clone(),
        };
        match s.get("OutputPath") {
            None => Ok(combined),
            Some(Value::Null) => Ok(json!({})),
            Some(p) => {
                jsonpath::expression(p.as_str().unwrap_or("$"), &combined, &ctx, &vars.all())
                    .map_err(|m| fail("States.Runtime", m))
            }
        }
    }

    fn eval(&self, template: &Value, states: &Value, vars: &Vars) -> Result<Value, Failure> {
        jsonata::eval_template(template, states, &vars.all(), &self.opts.cancel).map_err(
            |e| match e {
                jsonata::EvalError::Query(m) => fail("States.QueryEvaluationError", m),
                jsonata::EvalError::TooLarge(m) => fail("States.DataLimitExceeded", m),
                jsonata::EvalError::Cancelled => {
                    fail("States.Runtime", "the execution was stopped")
                }
            },
        )
    }

    /// A number field that may be written literally, as a JSONata expression, or (JSONPath) as
    /// `<field>Path` into the state's input.
    fn number(
        &self,
        s: &Value,
        field: &str,
        input: &Value,
        name: &str,
        vars: &Vars,
    ) -> Result<Option<f64>, Failure> {
        let st = self.states_var(input, name, &[]);
        let v = match (s.get(field), s.get(format!("{field}Path").as_str())) {
            (Some(Value::String(_)), _) => Some(self.eval(&s[field], &st, vars)?),
            (Some(v), _) => Some(v.clone()),
            (None, Some(p)) => Some(
                jsonpath::expression(
                    p.as_str().unwrap_or("$"),
                    input,
                    &st["context"],
                    &vars.all(),
                )
                .map_err(|m| fail("States.Runtime", m))?,
            ),
            (None, None) => None,
        };
        match v {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                fail(
                    "States.Runtime",
                    format!("{name}: {field} is not a number: {v}"),
                )
            }),
        }
    }

    /// Runs a scope (the machine, a branch, an item processor) from its StartAt.
    fn scope<'s>(
        &'s self,
        body: &'s asl::Scope<'s>,
        input: Value,
        vars: &'s mut Vars,
    ) -> BoxFuture<'s, Result<Value, Failure>> {
        async move {
            let mut name = body.start_at.ok_or_else(|| fail("States.Runtime", "no StartAt"))?.to_string();
            let mut input = input;
            loop {
                // the failure event must still fit: it is the history's last
                if self.journal.len() + 1 >= MAX_HISTORY {
                    return Err(fail(
                        "States.Runtime",
                        format!("The execution reached the maximum number of history events ({MAX_HISTORY})."),
                    ));
                }
                self.transitions.fetch_add(1, Ordering::Relaxed);
                let s = body.state(&name).ok_or_else(|| fail("States.Runtime", format!("no state {name}")))?;
                let (output, next) = self.state(s, input, vars).await?;
                match next {
                    Some(n) => {
                        name = n;
                        input = output;
                    }
                    None => return Ok(output),
                }
            }
        }
        .boxed()
    }

    /// Runs one state; returns its output and the next state (None: the scope ends).
    async fn state(
        &self,
        state: &asl::State<'_>,
        input: Value,
        vars: &mut Vars,
    ) -> Result<(Value, Option<String>), Failure> {
        let (name, s, ty) = (state.name, state.raw, state.kind.name());
        self.journal.path.lock().unwrap().push(name.to_string());
        self.event(
            &format!("{ty}StateEntered"),
            json!({"name": name, "input": input}),
        );
        let next = state.next().map(str::to_string);
        let jp = !state.jsonata();
        let input = &input;
        let result = match (state.kind, jp) {
            (Kind::Task | Kind::Parallel | Kind::Map, _) => {
                self.with_retry(state, input, vars, next).await
            }
            (Kind::Pass, true) => self.jp_pass(name, s, input, vars).map(|o| (o, next)),
            (Kind::Wait, true) => self.jp_wait(name, s, input, vars).await.map(|o| (o, next)),
            (Kind::Choice, true) => self.jp_choice(name, s, input, vars),
            (Kind::Succeed, true) => {
                let effective = self.jp_input(s, input, name, vars)?;
                self.jp_output(s, &effective, None, name, vars)
                    .map(|o| (o, None))
            }
            (Kind::Fail, true) => Err(self.jp_fail(name, s, input, vars)?),
            (Kind::Pass, false) => self.finish(name, s, input, None, vars).map(|o| (o, next)),
            (Kind::Wait, false) => self.wait(name, s, input, vars).await.map(|o| (o, next)),
            (Kind::Choice, false) => self.choice(name, s, input, vars),
            (Kind::Succeed, false) => match s.get("Output") {
                Some(o) => Ok((
                    self.eval(o, &self.states_var(input, name, &[]), vars)?,
                    None,
                )),
                None => Ok((input.clone(), None)),
            },
            (Kind::Fail, false) => Err(self.fail_state(name, s, input, vars)?),
            (Kind::Unknown, _) => Err(fail(
                "States.Runtime",
                format!("unknown state type {}", s["Type"]),
            )),
        };
        // an output over the quota fails the state itself: no StateExited
        let result = match result {
            Ok((out, _)) if larger_than(&out, MAX_PAYLOAD) => Err(too_large(name)),
            other => other,
        };
        if let Ok((out, _)) = &result {
            self.event(
                &format!("{ty}StateExited"),
                json!({"name": name, "output": out}),
            );
        }
        result
    }

    /// A JSONPath Pass: Result, else Parameters over the effective input, else the input.
    fn jp_pass(
        &self,
        name: &str,
        s: &Value,
        input: &Value,
        vars: &mut Vars,
    ) -> Result<Value, Failure> {
        let effective = self.jp_input(s, input, name, vars)?;
        let result = match (s.get("Result"), s.get("Parameters")) {
            (Some(r), _) => r.clone(),
            (None, Some(p)) => {
                self.jp_template(p, &effective, &self.context_for(name, &[]), vars)?
            }
            (None, None) => effective,
        };
        self.jp_output(s, input, Some(result), name, vars)
    }

    /// A JSONPath Wait: Seconds, SecondsPath, Timestamp or TimestampPath.
    async fn jp_wait(
        &self,
        name: &str,
        s: &Value,
        input: &Value,
        vars: &mut Vars,
    ) -> Result<Value, Failure> {
        let effective = self.jp_input(s, input, name, vars)?;
        let ctx = self.context_for(name, &[]);
        let path = |p: &Value| {
            jsonpath::expression(p.as_str().unwrap_or("$"), &effective, &ctx, &vars.all())
                .map_err(|m| fail("States.Runtime", m))
        };
        let secs = match (
            s.get("Seconds"),
            s.get("SecondsPath"),
            s.get("Timestamp"),
            s.get("TimestampPath"),
        ) {
            (Some(v), ..) => v.as_f64().unwrap_or(0.0),
            (None, Some(p), ..) => match path(p)? {
                // AWS: a non-negative integer
                v if v.as_u64().is_some() => v.as_f64().unwrap_or(0.0),
                v => {
                    return Err(fail(
                        "States.Runtime",
                        format!(
                            "{name}: the SecondsPath {} gives {v}, not a non-negative integer",
                            p.as_str().unwrap_or("")
                        ),
                    ));
                }
            },
            (None, None, Some(t), _) => self.until(t, "States.Runtime")?,
            (None, None, None, Some(p)) => self.until(&path(p)?, "States.Runtime")?,
            _ => 0.0,
        };
        self.sleep(secs).await;
        self.jp_output(s, &effective, None, name, vars)
    }

    /// A JSONPath Choice: the first rule that matches (its Assign applied), else Default.
    fn jp_choice(
        &self,
        name: &str,
        s: &Value,
        input: &Value,
        vars: &mut Vars,
    ) -> Result<(Value, Option<String>), Failure> {
        let effective = self.jp_input(s, input, name, vars)?;
        let ctx = self.context_for(name, &[]);
        let mut to = None;
        for r in s["Choices"].as_array().into_iter().flatten() {
            if jsonpath::rule(r, &effective, &ctx, &vars.all())
                .map_err(|m| fail("States.Runtime", m))?
            {
                if let Some(a) = r.get("Assign") {
                    let assigned = self.jp_template(a, &effective, &ctx, vars)?;
                    vars.assign(assigned);
                }
                to = r["Next"].as_str().map(str::to_string);
                break;
            }
        }
        let Some(to) = to.or_else(|| s["Default"].as_str().map(str::to_string)) else {
            return Err(fail(
                "States.NoChoiceMatched",
                format!("no Choice rule matched in {name}"),
            ));
        };
        Ok((self.jp_output(s, &effective, None, name, vars)?, Some(to)))
    }

    /// A JSONPath Fail: Error / Cause, or ErrorPath / CausePath (a path or an intrinsic) over
    /// the input; a path that is not there, or not a string, fails with States.Runtime.
    fn jp_fail(
        &self,
        name: &str,
        s: &Value,
        input: &Value,
        vars: &Vars,
    ) -> Result<Failure, Failure> {
        let ctx = self.context_for(name, &[]);
        let pick = |k: &str, kp: &str| -> Result<Option<String>, Failure> {
            if let Some(v) = s[k].as_str() {
                return Ok(Some(v.to_string()));
            }
            let Some(p) = s[kp].as_str() else {
                return Ok(None);
            };
            let v = jsonpath::expression(p, input, &ctx, &vars.all())
                .map_err(|m| fail("States.Runtime", format!("{name}: {kp}: {m}")))?;
            match v {
                Value::String(t) => Ok(Some(t)),
                other => Err(fail(
                    "States.Runtime",
                    format!("{name}: {kp} {p} gives {other}, not a string"),
                )),
            }
        };
        Ok(fail(
            &pick("Error", "ErrorPath")?.unwrap_or_default(),
            pick("Cause", "CausePath")?.unwrap_or_default(),
        ))
    }

    /// A JSONata Fail: Error and Cause evaluated.
    fn fail_state(
        &self,
        name: &str,
        s: &Value,
        input: &Value,
        vars: &mut Vars,
    ) -> Result<Failure, Failure> {
        let st = self.states_var(input, name, &[]);
        let text = |k: &str| -> Result<Option<String>, Failure> {
            let v = s.get(k).map(|e| self.eval(e, &st, vars)).transpose()?;
            Ok(v.and_then(|v| v.as_str().map(str::to_string)))
        };
        let (error, cause) = (text("Error")?, text("Cause")?);
        Ok(fail(
            error.as_deref().unwrap_or_default(),
            cause.unwrap_or_default(),
        ))
    }

    /// A JSONata Wait: Seconds or Timestamp evaluated.
    async fn wait(
        &self,
        name: &str,
        s: &Value,
        input: &Value,
        vars: &mut Vars,
    ) -> Result<Value, Failure> {
        let st = self.states_var(input, name, &[]);
        let secs = match (s.get("Seconds"), s.get("Timestamp")) {
            (Some(v), _) => match self.eval(v, &st, vars)? {
                v if v.as_u64().is_some() => v.as_f64().unwrap_or(0.0),
                v => {
                    return Err(fail(
                        "States.QueryEvaluationError",
                        format!("{name}: Seconds gives {v}, not a non-negative integer"),
                    ));
                }
            },
            (None, Some(t)) => {
                self.until(&self.eval(t, &st, vars)?, "States.QueryEvaluationError")?
            }
            _ => 0.0,
        };
        self.sleep(secs).await;
        self.finish(name, s, input, None, vars)
    }

    /// A JSONata Choice: the first rule whose Condition is true (its Assign applied), else
    /// Default.
    fn choice(
        &self,
        name: &str,
        s: &Value,
        input: &Value,
        vars: &mut Vars,
    ) -> Result<(Value, Option<String>), Failure> {
        let st = self.states_var(input, name, &[]);
        let mut chosen = None;
        for rule in s["Choices"].as_array().into_iter().flatten() {
            let matched = match self.eval(&rule["Condition"], &st, vars)? {
                Value::Bool(b) => b,
                other => {
                    return Err(fail(
                        "States.QueryEvaluationError",
                        format!("{name}: the Condition gives {other}, not a boolean"),
                    ));
                }
            };
            if matched {
                chosen = Some(rule);
                break;
            }
        }
        if let Some(rule) = chosen {
            // the rule's own Output and Assign, else the state's
            let output = match rule.get("Output").or(s.get("Output")) {
                Some(o) => self.eval(o, &st, vars)?,
                None => input.clone(),
            };
            let mut assigned = Map::new();
            for a in [s.get("Assign"), rule.get("Assign")].into_iter().flatten() {
                if let Value::Object(m) = self.eval(a, &st, vars)? {
                    assigned.extend(m);
                }
            }
            vars.assign(Value::Object(assigned));
            return Ok((output, rule["Next"].as_str().map(str::to_string)));
        }
        match s["Default"].as_str().map(str::to_string) {
            Some(n) => self
                .finish(name, s, input, None, vars)
                .map(|o| (o, Some(n))),
            None => Err(fail(
                "States.NoChoiceMatched",
                format!("no Choice rule matched in {name}"),
            )),
        }
    }

    /// Seconds from now until a timestamp (RFC 3339, as `jsonpath::timestamp` reads it); 0 if
    /// it has passed. One that is not a timestamp fails with `error`.
    fn until(&self, t: &Value, error: &str) -> Result<f64, Failure> {
        let (secs, nanos) = t.as_str().and_then(jsonpath::timestamp).ok_or_else(|| {
            fail(error, format!("The Timestamp {t} is not a valid timestamp (RFC 3339, e.g. 2016-03-14T01:59:00Z)"))
        })?;
        let when = secs as f64 + nanos as f64 / 1e9;
        let now = aws_smithy_types::DateTime::from(self.wall_start + self.clock.elapsed());
        Ok((when - now.as_secs_f64()).max(0.0))
    }

    /// Output and Assign of a state that ends normally (Assign sees the same `$states`).
    fn finish(
        &self,
        name: &str,
        s: &Value,
        input: &Value,
        result: Option<&Value>,
        vars: &mut Vars,
    ) -> Result<Value, Failure> {
        let extra: Vec<(&str, Value)> = result
            .map(|r| vec![("result", r.clone())])
            .unwrap_or_default();
        let st = self.states_var(input, name, &extra);
        let output = match s.get("Output") {
            Some(o) => self.eval(o, &st, vars)?,
            None => result.cloned().unwrap_or_else(|| input.clone()),
        };
        if let Some(a) = s.get("Assign") {
            let assigned = self.eval(a, &st, vars)?;
            vars.assign(assigned);
        }
        Ok(output)
    }

    async fn with_retry(
        &self,
        state: &asl::State<'_>,
        input: &Value,
        vars: &mut Vars,
        next: Option<String>,
    ) -> Result<(Value, Option<String>), Failure> {
        let (name, s, jp) = (state.name, state.raw, !state.jsonata());
        let mut attempts: Vec<u64> = vec![0; s["Retry"].as_array().map(|r| r.len()).unwrap_or(0)];
        let retriers = s["Retry"].as_array().cloned().unwrap_or_default();
        loop {
            // AWS records a Parallel or Map state's failure only once it is not retried
            let will_retry = |error: &str| {
                retriers
                    .iter()
                    .enumerate()
                    .find(|(_, r)| matches(&r["ErrorEquals"], error))
                    .is_some_and(|(i, r)| attempts[i] < r["MaxAttempts"].as_u64().unwrap_or(3))
            };
            let attempt = match state.kind {
                Kind::Task => {
                    self.task(name, s, jp, input, vars, attempts.iter().sum())
                        .await
                }
                Kind::Parallel => self.parallel(state, input, vars, &will_retry).await,
                _ => self.map(state, input, vars, &will_retry).await,
            };
            let failure = match attempt {
                Ok(result) if jp => {
                    let ctx = self.context_for(name, &[]);
                    let result = match s.get("ResultSelector") {
                        Some(sel) => self.jp_template(sel, &result, &ctx, vars)?,
                        None => result,
                    };
                    return self
                        .jp_output(s, input, Some(result), name, vars)
                        .map(|o| (o, next));
                }
                Ok(result) => {
                    return self
                        .finish(name, s, input, Some(&result), vars)
                        .map(|o| (o, next));
                }
                Err(f) => f,
            };
            // Retry: the first retrier matching the error decides.
            if let Some((i, r)) = retriers
                .iter()
                .enumerate()
                .find(|(_, r)| matches(&r["ErrorEquals"], &failure.error))
            {
                let max = r["MaxAttempts"].as_u64().unwrap_or(3);
                if attempts[i] < max {
                    let interval = r["IntervalSeconds"].as_f64().unwrap_or(1.0);
                    let rate = r["BackoffRate"].as_f64().unwrap_or(2.0);
                    let mut delay = interval * rate.powi(attempts[i] as i32);
                    if let Some(cap) = r["MaxDelaySeconds"].as_f64() {
                        delay = delay.min(cap);
                    }
                    if r["JitterStrategy"] == "FULL" {
                        // a random share of the delay, as AWS does
                        delay *= rand::random::<f64>();
                    }
                    attempts[i] += 1;
                    self.sleep(delay).await;
                    continue;
                }
            }
            // Catch
            for c in s["Catch"].as_array().into_iter().flatten() {
                if matches(&c["ErrorEquals"], &failure.error) {
                    let error_output = json!({"Error": failure.error, "Cause": failure.cause});
                    if jp {
                        if let Some(a) = c.get("Assign") {
                            let assigned = self.jp_template(
                                a,
                                &error_output,
                                &self.context_for(name, &[]),
                                vars,
                            )?;
                            vars.assign(assigned);
                        }
                        let output = match c.get("ResultPath") {
                            Some(Value::Null) => input.clone(),
                            Some(p) => {
                                jsonpath::set(p.as_str().unwrap_or("$"), input, error_output)
                                    .map_err(|m| fail("States.ResultPathMatchFailure", m))?
                            }
                            None => error_output,
                        };
                        // the state's one StateExited is written by `state` on the way out
                        return Ok((output, c["Next"].as_str().map(str::to_string)));
                    }
                    let st = self.states_var(input, name, &[("errorOutput", error_output.clone())]);
                    let output = match c.get("Output") {
                        Some(o) => self.eval(o, &st, vars)?,
                        None => error_output,
                    };
                    if let Some(a) = c.get("Assign") {
                        let assigned = self.eval(a, &st, vars)?;
                        vars.assign(assigned);
                    }
                    return Ok((output, c["Next"].as_str().map(str::to_string)));
                }
            }
            return Err(failure);
        }
    }

    /// What a Task or Parallel state works on: JSONPath InputPath + Parameters, or JSONata Arguments.
    fn arguments(
        &self,
        s: &Value,
        jp: bool,
        input: &Value,
        name: &str,
        st: &Value,
        vars: &Vars,
    ) -> Result<Value, Failure> {
        if jp {
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

    async fn task(
        &self,
        name: &str,
        s: &Value,
        jp: bool,
        input: &Value,
        vars: &Vars,
        retries: u64,
    ) -> Result<Value, Failure> {
        let resource = s["Resource"].as_str().unwrap_or_default().to_string();
        let token = resource.ends_with(".waitForTaskToken").then(new_token);
        let mut st = self.states_var(input, name, &[]);
        st["context"]["State"]["RetryCount"] = json!(retries);
        if let Some(t) = &token {
            st["context"]["Task"] = json!({"Token": t});
        }
        let args = self.arguments(s, jp, input, name, &st, vars)?;
        let timeout = self.number(s, "TimeoutSeconds", input, name, vars)?;
        let heartbeat = self.number(s, "HeartbeatSeconds", input, name, vars)?;
        // A Lambda function named by its ARN (not through arn:aws:states:::lambda:invoke): AWS
        // records LambdaFunction* events for it, not Task* ones.
        let lambda = is_lambda_arn(&resource);
        if lambda {
            self.event(
                "LambdaFunctionScheduled",
                json!({"resource": resource, "input": args, "timeoutInSeconds": timeout}),
            );
            self.event("LambdaFunctionStarted", json!({}));
        } else {
            self.event(
                "TaskScheduled",
                json!({"resource": resource, "parameters": args, "timeoutInSeconds": timeout, "heartbeatInSeconds": heartbeat}),
            );
            self.event("TaskStarted", json!({"resource": resource}));
        }
        // Registered before the call: the answer may come back before the call returns.
        let callbacks = self.opts.callbacks.as_ref();
        let waiting = token
            .as_deref()
            .and_then(|t| callbacks.map(|c| c.register(t)));
        let work = async {
            let call = TaskCall {
                state: name,
                resource: &resource,
                arguments: &args,
                token: token.as_deref(),
            };
            match self.tasks.call(call).await {
                TaskResult::Return(v) => Ok(v),
                TaskResult::Throw { error, cause } => Err(Failure { error, cause }),
                TaskResult::AwaitToken => match waiting {
                    Some(rx) => self.answer(rx, heartbeat).await,
                    None => Err(fail(
                        "States.Runtime",
                        "this engine has no way to receive task tokens",
                    )),
                },
            }
        };
        let outcome = match timeout {
            Some(t) => self
                .clock
                .timeout(
                    Duration::from_secs_f64((t * self.opts.time_scale).max(0.0)),
                    work,
                )
                .await
                .unwrap_or_else(|_| {
                    Err(fail(
                        "States.Timeout",
                        format!("{name} did not finish within {t} s (TimeoutSeconds)"),
                    ))
                }),
            None => work.await,
        };
        if let (Some(t), Some(c)) = (&token, callbacks) {
            c.forget(t);
        }
        // a result over the quota fails the task (catchable, as AWS records it), named by the
        // integration's type ('lambda') or the function's ARN
        let outcome = match outcome {
            Ok(v) if larger_than(&v, MAX_PAYLOAD) => Err(too_large(&if lambda {
                resource.clone()
            } else {
                split_resource(&resource).0
            })),
            other => other,
        };
        match outcome {
            Ok(v) if lambda => {
                self.event("LambdaFunctionSucceeded", json!({"output": v}));
                Ok(v)
            }
            Ok(v) => {
                self.event("TaskSucceeded", json!({"resource": resource, "output": v}));
                Ok(v)
            }
            Err(f) => {
                let timed_out = f.error == "States.Timeout" || f.error == "States.HeartbeatTimeout";
                let (kind, details) = match (lambda, timed_out) {
                    (true, true) => (
                        "LambdaFunctionTimedOut",
                        json!({"error": f.error, "cause": f.cause}),
                    ),
                    (true, false) => (
                        "LambdaFunctionFailed",
                        json!({"error": f.error, "cause": f.cause}),
                    ),
                    (false, true) => (
                        "TaskTimedOut",
                        json!({"resource": resource, "error": f.error, "cause": f.cause}),
                    ),
                    (false, false) => (
                        "TaskFailed",
                        json!({"resource": resource, "error": f.error, "cause": f.cause}),
                    ),
                };
                self.event(kind, details);
                Err(f)
            }
        }
    }

    /// Waits for SendTaskSuccess / SendTaskFailure; SendTaskHeartbeat restarts the heartbeat timer.
    async fn answer(
        &self,
        mut rx: mpsc::UnboundedReceiver<Callback>,
        heartbeat: Option<f64>,
    ) -> Result<Value, Failure> {
        loop {
            let got = match heartbeat {
                Some(h) => match self
                    .clock
                    .timeout(
                        Duration::from_secs_f64((h * self.opts.time_scale).max(0.0)),
                        rx.recv(),
                    )
                    .await
                {
                    Ok(got) => got,
                    Err(_) => {
                        return Err(fail(
                            "States.HeartbeatTimeout",
                            format!("no heartbeat within {h} s (HeartbeatSeconds)"),
                        ));
                    }
                },
                None => rx.recv().await,
            };
            match got {
                Some(Callback::Success(v)) => return Ok(v),
                Some(Callback::Failure { error, cause }) => return Err(Failure { error, cause }),
                Some(Callback::Heartbeat) => continue,
                None => return Err(fail("States.Runtime", "the task token was withdrawn")),
            }
        }
    }

    async fn parallel(
        &self,
        state: &asl::State<'_>,
        input: &Value,
        vars: &Vars,
        will_retry: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Value, Failure> {
        let (name, s) = (state.name, state.raw);
        let st = self.states_var(input, name, &[]);
        let branch_input = self.arguments(s, !state.jsonata(), input, name, &st, vars)?;
        self.event("ParallelStateStarted", json!({}));
        let branches = &state.scopes;
        // Branches run together; the first failure ends the others (AWS stops them too).
        let started = self.last_event();
        let runs = branches.iter().map(|b| {
            let branch_input = branch_input.clone();
            self.branch(started, async move {
                let mut inner = vars.nested();
                self.scope(b, branch_input, &mut inner).await
            })
        });
        let joined = futures::future::try_join_all(runs).await;
        self.rejoin();
        match joined {
            Ok(results) => {
                self.event("ParallelStateSucceeded", json!({}));
                Ok(Value::Array(results))
            }
            Err(f) if will_retry(&f.error) => Err(f),
            Err(f) => {
                self.event(
                    "ParallelStateFailed",
                    json!({"error": f.error, "cause": f.cause}),
                );
                Err(f)
            }
        }
    }

    async fn map(
        &self,
        state: &asl::State<'_>,
        input: &Value,
        vars: &Vars,
        will_retry: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Value, Failure> {
        let (name, s) = (state.name, state.raw);
        let st = self.states_var(input, name, &[]);
        let jp = !state.jsonata();
        let effective = if jp {
            self.jp_input(s, input, name, vars)?
        } else {
            input.clone()
        };
        let items = match (jp, s.get("Items"), s.get("ItemsPath")) {
            (false, Some(i), _) => self.eval(i, &st, vars)?,
            (true, _, Some(p)) => jsonpath::expression(
                p.as_str().unwrap_or("$"),
                &effective,
                &st["context"],
                &vars.all(),
            )
            .map_err(|m| fail("States.Runtime", m))?,
            _ => effective.clone(),
        };
        let items = items.as_array().cloned().ok_or_else(|| {
            fail(
                if jp {
                    "States.Runtime"
                } else {
                    "States.QueryEvaluationError"
                },
                format!("Map state input must be an array but was: {items}"),
            )
        })?;
        let total = items.len();
        // AWS's ranges: a concurrency and a count are non-negative integers, a percentage is
        // 0 to 100; a value read from the input (…Path) or an expression that is out of range
        // fails the state
        let error = if jp {
            "States.Runtime"
        } else {
            "States.QueryEvaluationError"
        };
        let checked = |field: &str, v: Option<f64>, ok: &dyn Fn(f64) -> bool, what: &str| match v {
            Some(x) if !ok(x) => Err(fail(
                error,
                format!("{name}: {field} is {x}; it must be {what}"),
            )),
            v => Ok(v),
        };
        let whole = |x: f64| x >= 0.0 && x.fract() == 0.0;
        let max = checked(
            "MaxConcurrency",
            self.number(s, "MaxConcurrency", input, name, vars)?,
            &whole,
            "a non-negative integer",
        )?
        .unwrap_or(0.0) as usize;
        let tolerated_count = checked(
            "ToleratedFailureCount",
            self.number(s, "ToleratedFailureCount", input, name, vars)?,
            &whole,
            "a non-negative integer",
        )?;
        let tolerated_share = checked(
            "ToleratedFailurePercentage",
            self.number(s, "ToleratedFailurePercentage", input, name, vars)?,
            &|x| (0.0..=100.0).contains(&x),
            "a number from 0 to 100",
        )?;
        self.event("MapStateStarted", json!({"length": total}));
        let processor = state
            .processor()
            .ok_or_else(|| fail("States.Runtime", format!("{name}: no ItemProcessor")))?;
        // A Distributed Map runs its items as child executions of a Map Run: the parent's
        // history records the Map Run, not the iterations.
        let distributed = processor.raw["ProcessorConfig"]["Mode"] == "DISTRIBUTED";
        // a Map Run tolerates no failure unless told (AWS: 0%, then
        // States.ExceedToleratedFailureThreshold); an inline Map fails with the item's error
        let tolerant = distributed || tolerated_count.is_some() || tolerated_share.is_some();
        if distributed {
            let map_run = format!(
                "{}/{name}:{}",
                self.opts.execution_arn.replace(":execution:", ":mapRun:"),
                uuid::Uuid::new_v4()
            );
            self.event("MapRunStarted", json!({"mapRunArn": map_run}));
        }
        let selector = s
            .get("ItemSelector")
            .or(if jp { s.get("Parameters") } else { None });
        let started = self.last_event();
        let iterations = items.into_iter().enumerate().map(|(i, item)| {
            let (st, effective) = (&st, &effective);
            let run = self.branch(started, async move {
                self.event("MapIterationStarted", json!({"name": name, "index": i}));
                let mut ist = st.clone();
                ist["context"]["Map"] = json!({"Item": {"Index": i, "Value": item}});
                let item_input = match (selector, jp) {
                    (Some(sel), true) => self.jp_template(sel, effective, &ist["context"], vars)?,
                    (Some(sel), false) => self.eval(sel, &ist, vars)?,
                    (None, _) => item,
                };
                let mut inner = vars.nested();
                let r = self.scope(processor, item_input, &mut inner).await;
                let kind = if r.is_ok() {
                    "MapIterationSucceeded"
                } else {
                    "MapIterationFailed"
                };
                self.event(kind, json!({"name": name, "index": i}));
                r
            });
            async move {
                if distributed {
                    CHILD_EXECUTION.scope((), run).await
                } else {
                    run.await
                }
            }
        });
        // MaxConcurrency 0 (or none) is as many as AWS runs at once for an inline Map (40, its
        // documented quota); results keep the items' order.
        let mut running = futures::stream::iter(iterations).buffered(if max == 0 {
            INLINE_MAP_CONCURRENCY
        } else {
            max
        });
        let mut results = Vec::with_capacity(total);
        let mut failures = 0usize;
        while let Some(r) = running.next().await {
            self.rejoin();
            match r {
                Ok(v) => results.push(v),
                Err(f) => {
                    failures += 1;
                    let over_count = tolerated_count.is_none_or(|c| failures as f64 > c);
                    let over_share =
                        tolerated_share.is_none_or(|p| failures as f64 * 100.0 / total as f64 > p);
                    if !tolerant || (over_count && over_share) {
                        let failure = if tolerant {
                            fail(
                                "States.ExceedToleratedFailureThreshold",
                                format!(
                                    "{failures} of {total} iterations failed, more than tolerated (last: {}: {})",
                                    f.error, f.cause
                                ),
                            )
                        } else {
                            f
                        };
                        if distributed {
                            self.event(
                                "MapRunFailed",
                                json!({"error": failure.error, "cause": failure.cause}),
                            );
                        }
                        if !will_retry(&failure.error) {
                            self.event("MapStateFailed", json!({}));
                        }
                        return Err(failure);
                    }
                    results.push(json!({"Error": f.error, "Cause": f.cause}));
                }
            }
        }
        if distributed {
            self.event("MapRunSucceeded", json!({}));
        }
        self.event("MapStateSucceeded", json!({}));
        Ok(Value::Array(results))
    }
}

/// `arn:aws:states:::aws-sdk:iam:createUser` → (`aws-sdk:iam`, `createUser`); `lambda:invoke` → (`lambda`, `invoke`).
pub fn split_resource(resource: &str) -> (String, String) {
    let r = resource
        .strip_prefix("arn:aws:states:::")
        .unwrap_or(resource);
    if r.starts_with("arn:aws:lambda:") {
        return ("lambda".into(), "invoke".into());
    }
    match r.rsplit_once(':') {
        Some((t, op)) => (t.into(), op.into()),
        None => (r.into(), String::new()),
    }
}

/// A Lambda function's ARN (`arn:<partition>:lambda:<region>:<account>:function:<name>`).
fn is_lambda_arn(resource: &str) -> bool {
    let parts: Vec<&str> = resource.splitn(7, ':').collect();
    parts.len() >= 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function"
}

fn matches(list: &Value, error: &str) -> bool {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str())
        .any(|e| {
            e == error
                // AWS: States.ALL does not catch runtime errors
                || (e == "States.ALL" && error != "States.Runtime")
                || (e == "States.TaskFailed" && !error.starts_with("States."))
                || (e == "States.TaskFailed" && error == "States.TaskFailed")
        })
}

/// Runs a definition to its end on the current runtime's clock, recording into `journal`.
pub async fn execute(
    definition: &Value,
    input: Value,
    opts: &Options,
    tasks: &dyn Tasks,
    journal: &Journal,
) -> Execution {
    // the execution's own chain of events, which each branch starts from (`Run::branch`)
    let chain = std::cell::Cell::new(0);
    LAST_EVENT
        .scope(
            chain,
            run_execution(definition, input, opts, tasks, journal),
        )
        .await
}

async fn run_execution(
    definition: &Value,
    input: Value,
    opts: &Options,
    tasks: &dyn Tasks,
    journal: &Journal,
) -> Execution {
    let wall_start = SystemTime::now();
    let context = json!({
        "Execution": {"Id": opts.execution_arn, "Name": opts.name, "Input": input, "StartTime": iso(wall_start), "RoleArn": opts.role_arn, "RedriveCount": 0},
        "StateMachine": {"Id": opts.machine_arn, "Name": opts.machine_name}});
    let machine = asl::Machine::parse(definition);
    let run = Run {
        tasks,
        journal,
        opts,
        clock: opts.clock.start(),
        wall_start,
        context,
        transitions: AtomicUsize::new(0),
        iso_cache: Mutex::default(),
    };
    run.event(
        "ExecutionStarted",
        json!({"input": input, "roleArn": opts.role_arn}),
    );
    let mut vars = Vars::default();
    let limit = definition["TimeoutSeconds"].as_f64();
    // a timeout also stops an evaluation in progress, which the timer alone cannot interrupt
    if let Some(t) = limit.filter(|_| run.clock.is_real()) {
        let (cancel, after) = (
            opts.cancel.clone(),
            Duration::from_secs_f64((t * opts.time_scale).max(0.0)),
        );
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            cancel.cancel();
        });
    }
    let body = run.scope(&machine.top, input, &mut vars);
    let result = match limit {
        Some(t) => run
            .clock
            .timeout(
                Duration::from_secs_f64((t * opts.time_scale).max(0.0)),
                body,
            )
            .await
            .map_err(|_| {
                fail(
                    "States.Timeout",
                    format!("the execution did not finish within {t} s (TimeoutSeconds)"),
                )
            }),
        None => Ok(body.await),
    };
    let (status, output, error, cause) = match result {
        Ok(Ok(out)) => {
            run.event("ExecutionSucceeded", json!({"output": out}));
            (Status::Succeeded, out, None, None)
        }
        Ok(Err(f)) => {
            run.event(
                "ExecutionFailed",
                json!({"error": f.error, "cause": f.cause}),
            );
            (Status::Failed, Value::Null, Some(f.error), Some(f.cause))
        }
        Err(f) => {
            run.event(
                "ExecutionTimedOut",
                json!({"error": f.error, "cause": f.cause}),
            );
            (Status::TimedOut, Value::Null, Some(f.error), Some(f.cause))
        }
    };
    let path = journal.path.lock().unwrap().clone();
    Execution {
        status,
        output,
        error,
        cause,
        path,
        events: journal.events(),
        seconds: run.now(),
    }
}

/// Runs a definition on a paused clock: Waits, backoffs and timeouts take no real time.
/// Callable from inside or outside a tokio runtime.
pub fn execute_virtual(
    definition: &Value,
    input: Value,
    name: &str,
    tasks: &dyn Tasks,
) -> Execution {
    let go = move || {
        let time = std::sync::Arc::new(clock::VirtualTime::default());
        let opts = Options {
            clock: clock::Clock::Virtual(time.clone()),
            ..Options::local(name)
        };
        clock::run_virtual(
            &time,
            execute(definition, input, &opts, tasks, &Journal::default()),
        )
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| s.spawn(go).join().expect("the engine thread"))
    } else {
        go()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Script(Mutex<Vec<TaskResult>>);
    #[async_trait::async_trait]
    impl Tasks for Script {
        async fn call(&self, call: TaskCall<'_>) -> TaskResult {
            let mut s = self.0.lock().unwrap();
            if s.is_empty() {
                return TaskResult::Return(call.arguments.clone());
            }
            s.remove(0)
        }
    }
    fn script(r: Vec<TaskResult>) -> Script {
        Script(Mutex::new(r))
    }

    fn throw(e: &str) -> TaskResult {
        TaskResult::Throw {
            error: e.into(),
            cause: "because".into(),
        }
    }

    #[test]
    fn catch_output_and_assign_see_the_error() {
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "x", "Next": "Ok",
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled", "Output": "{% $states.errorOutput %}", "Assign": {"why": "{% $states.errorOutput.Cause %}"}}]},
            "Ok": {"Type": "Succeed"},
            "Handled": {"Type": "Pass", "Output": "{% {'error': $states.input.Error, 'why': $why} %}", "End": true}}});
        let e = execute_virtual(&def, json!({}), "t", &script(vec![throw("Boom")]));
        assert_eq!(e.status, Status::Succeeded);
        assert_eq!(e.output, json!({"error": "Boom", "why": "because"}));
        assert_eq!(e.path, vec!["T", "Handled"]);
        // one StateExited for the state that caught, with what the Catch made of the error
        let exited: Vec<Value> = e
            .events
            .iter()
            .filter(|ev| ev.kind == "TaskStateExited")
            .map(|ev| ev.details.value()["output"].clone())
            .collect();
        assert_eq!(exited, vec![json!({"Error": "Boom", "Cause": "because"})]);
    }

    #[test]
    fn a_parallel_s_failure_is_recorded_once_after_its_last_retry() {
        let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true,
            "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "IntervalSeconds": 1}],
            "Branches": [{"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E"}}}]}}});
        let e = execute_virtual(&def, json!({}), "t", &script(vec![]));
        assert_eq!(e.error.as_deref(), Some("E"));
        let count = |k: &str| e.events.iter().filter(|ev| ev.kind == k).count();
        assert_eq!(count("ParallelStateStarted"), 3, "three attempts");
        assert_eq!(
            count("ParallelStateFailed"),
            1,
            "recorded once, not per attempt"
        );
        let last_two: Vec<&str> = e.events.iter().rev().take(2).map(|ev| ev.kind).collect();
        assert_eq!(last_two, ["ExecutionFailed", "ParallelStateFailed"]);
    }

    #[test]
    fn each_branch_s_events_follow_on_from_the_event_that_began_it() {
        let def = json!({"StartAt": "P", "States": {
            "P": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "A1", "States": {"A1": {"Type": "Pass", "Next": "A2"}, "A2": {"Type": "Pass", "End": true}}},
                {"StartAt": "B1", "States": {"B1": {"Type": "Pass", "Next": "B2"}, "B2": {"Type": "Pass", "End": true}}}]}}});
        let e = execute_virtual(&def, json!({}), "t", &script(vec![]));
        let by_id: std::collections::BTreeMap<usize, &Event> =
            e.events.iter().map(|ev| (ev.id, ev)).collect();
        let name = |ev: &Event| {
            ev.details.value()["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        // walking back from a branch's last state reaches its first, then ParallelStateStarted,
        // never the other branch
        for (last, first, other) in [("A2", "A1", "B"), ("B2", "B1", "A")] {
            let entered = e
                .events
                .iter()
                .find(|ev| ev.kind == "PassStateEntered" && name(ev) == last)
                .unwrap();
            let mut chain = Vec::new();
            let mut at = by_id.get(&entered.prev).copied();
            while let Some(ev) = at {
                chain.push((ev.kind, name(ev)));
                if ev.kind == "ParallelStateStarted" {
                    break;
                }
                at = by_id.get(&ev.prev).copied();
            }
            assert_eq!(
                chain.last().map(|c| c.0),
                Some("ParallelStateStarted"),
                "{chain:?}"
            );
            assert!(chain.iter().any(|(_, n)| n == first), "{chain:?}");
            assert!(
                !chain.iter().any(|(_, n)| n.starts_with(other)),
                "{chain:?}"
            );
        }
    }

    #[test]
    fn retry_backoff_is_virtual_and_capped() {
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "x", "End": true,
                  "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 10, "BackoffRate": 3, "MaxAttempts": 3, "MaxDelaySeconds": 50}]}}});
        let e = execute_virtual(
            &def,
            json!({"a": 1}),
            "t",
            &script(vec![throw("E"), throw("E"), throw("E")]),
        );
        assert_eq!(e.status, Status::Succeeded);
        assert_eq!(
            e.seconds,
            10.0 + 30.0 + 50.0,
            "90 s of backoff, the third capped at 50 s"
        );
        let e = execute_virtual(
            &def,
            json!({}),
            "t",
            &script(vec![throw("E"), throw("E"), throw("E"), throw("E")]),
        );
        assert_eq!((e.status, e.error.as_deref()), (Status::Failed, Some("E")));
        let e = execute_virtual(&def, json!({}), "t", &script(vec![throw("Other")]));
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
        let e = execute_virtual(&def, json!({}), "t", &script(vec![]));
        assert_eq!(
            e.output,
            json!({"branches": [2, 11], "x": 1}),
            "$y stayed inside its branch (undefined drops out)"
        );
    }

    #[test]
    fn choice_without_match_fails() {
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n > 5 %}", "Next": "S"}]}, "S": {"Type": "Succeed"}}});
        let e = execute_virtual(&def, json!({"n": 1}), "t", &script(vec![]));
        assert_eq!(e.error.as_deref(), Some("States.NoChoiceMatched"));
    }

    #[test]
    fn parallel_branches_and_map_iterations_run_together() {
        let wait = |n: u64| json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": n, "End": true}}});
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {
            "P": {"Type": "Parallel", "Branches": [wait(10), wait(30), wait(20)], "Next": "M"},
            "M": {"Type": "Map", "Items": "{% [1,2,3,4,5] %}", "MaxConcurrency": 2,
                  "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 10, "Output": "{% $states.input * 2 %}", "End": true}}},
                  "End": true}}});
        let e = execute_virtual(&def, json!({}), "t", &script(vec![]));
        assert_eq!(e.status, Status::Succeeded);
        assert_eq!(
            e.output,
            json!([2, 4, 6, 8, 10]),
            "results keep the items' order"
        );
        // Parallel: the longest branch (30 s), not the sum (60 s); Map: 5 items two at a time = 3 rounds of 10 s
        assert_eq!(e.seconds.round(), 30.0 + 30.0);
    }

    #[test]
    fn an_inline_map_runs_at_most_forty_iterations_at_once_and_a_state_holds_at_most_256_kib() {
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "M", "States": {"M": {"Type": "Map", "Items": "{% [1..100] %}", "End": true,
            "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 10, "End": true}}}}}});
        let e = execute_virtual(&def, json!({}), "t", &Silent);
        assert_eq!(e.status, Status::Succeeded);
        assert_eq!(
            e.seconds.round(),
            30.0,
            "100 items, 40 at a time: 3 rounds of 10 s"
        );
        let big = json!({"QueryLanguage": "JSONata", "StartAt": "B", "States": {"B": {"Type": "Pass", "End": true,
            "Output": "{% $join([1..30000].('abcdefghij'), '') %}"}}});
        let e = execute_virtual(&big, json!({}), "t", &Silent);
        assert_eq!(
            e.error.as_deref(),
            Some("States.DataLimitExceeded"),
            "300,000 characters: over 256 KiB"
        );
    }

    #[test]
    fn map_tolerates_the_failures_it_is_told_to() {
        let def = |tolerated: Value| {
            let mut m = json!({"Type": "Map", "Items": "{% [1,2,3,4] %}", "End": true,
                  "ItemProcessor": {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "x", "End": true}}}});
            if let Value::Object(t) = tolerated {
                m.as_object_mut().unwrap().extend(t);
            }
            json!({"QueryLanguage": "JSONata", "StartAt": "M", "States": {"M": m}})
        };
        let one_bad = || {
            script(vec![
                TaskResult::Return(json!(1)),
                throw("Bad"),
                TaskResult::Return(json!(3)),
                TaskResult::Return(json!(4)),
            ])
        };
        let e = execute_virtual(
            &def(json!({"ToleratedFailureCount": 1})),
            json!({}),
            "t",
            &one_bad(),
        );
        assert_eq!(e.status, Status::Succeeded);
        assert_eq!(e.output[1], json!({"Error": "Bad", "Cause": "because"}));
        let e = execute_virtual(
            &def(json!({"ToleratedFailurePercentage": 10})),
            json!({}),
            "t",
            &one_bad(),
        );
        assert_eq!(
            e.error.as_deref(),
            Some("States.ExceedToleratedFailureThreshold"),
            "1 of 4 is 25%, over 10%"
        );
        let e = execute_virtual(&def(json!(null)), json!({}), "t", &one_bad());
        assert_eq!(
            e.error.as_deref(),
            Some("Bad"),
            "no tolerance: the iteration's own error"
        );
    }

    struct Silent;
    #[async_trait::async_trait]
    impl Tasks for Silent {
        async fn call(&self, call: TaskCall<'_>) -> TaskResult {
            if call.resource.ends_with(".waitForTaskToken") {
                return TaskResult::AwaitToken;
            }
            std::future::pending::<()>().await;
            unreachable!()
        }
    }

    #[test]
    fn timeouts_and_heartbeats_end_tasks_that_take_too_long() {
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "Slow", "States": {
            "Slow": {"Type": "Task", "Resource": "x", "TimeoutSeconds": 300, "Next": "Callback",
                     "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "Callback", "Output": "{% $states.errorOutput.Error %}"}]},
            "Callback": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish.waitForTaskToken", "HeartbeatSeconds": 60, "End": true}}});
        let mut opts = Options::local("t");
        opts.callbacks = Some(std::sync::Arc::new(Callbacks::default()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let e = rt.block_on(execute(
            &def,
            json!({}),
            &opts,
            &Silent,
            &Journal::default(),
        ));
        assert_eq!(e.error.as_deref(), Some("States.HeartbeatTimeout"));
        assert_eq!(
            e.seconds.round(),
            360.0,
            "300 s of task timeout, then 60 s without a heartbeat"
        );
        let kinds: Vec<_> = e
            .events
            .iter()
            .map(|e| e.kind)
            .filter(|k| k.ends_with("TimedOut"))
            .collect();
        assert_eq!(kinds, ["TaskTimedOut", "TaskTimedOut"]);
    }

    #[test]
    fn task_tokens_are_answered_and_heartbeats_keep_the_task_alive() {
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "Ask", "States": {
            "Ask": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish.waitForTaskToken", "HeartbeatSeconds": 60,
                    "Arguments": {"Message": "{% $states.context.Task.Token %}"}, "End": true}}});
        let callbacks = std::sync::Arc::new(Callbacks::default());
        let mut opts = Options::local("t");
        opts.callbacks = Some(callbacks.clone());
        let journal = Journal::default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let e = rt.block_on(async {
            let answer = async {
                // the token is in the task's parameters; answer it after three heartbeats 50 s apart
                let token = loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if let Some(e) = journal.events().iter().find(|e| e.kind == "TaskScheduled") {
                        break e.details.value()["parameters"]["Message"]
                            .as_str()
                            .unwrap()
                            .to_string();
                    }
                };
                for _ in 0..3 {
                    tokio::time::sleep(Duration::from_secs(50)).await;
                    assert!(callbacks.send(&token, Callback::Heartbeat));
                }
                assert!(callbacks.send(&token, Callback::Success(json!({"admin": true}))));
                assert!(
                    !callbacks.send(&token, Callback::Success(json!({}))),
                    "a token is answered once"
                );
            };
            let (e, ()) = tokio::join!(execute(&def, json!({}), &opts, &Silent, &journal), answer);
            e
        });
        assert_eq!(e.status, Status::Succeeded, "{:?}", e.error);
        assert_eq!(e.output, json!({"admin": true}));
        assert!(
            e.seconds > 150.0,
            "kept alive past the 60 s heartbeat limit by heartbeats"
        );
    }

    #[test]
    fn jsonpath_states_assign_variables() {
        let def = json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "x", "ResultSelector": {"n.$": "$.count"}, "Assign": {"seen.$": "$.n"}, "ResultPath": null, "Next": "C"},
            "C": {"Type": "Choice", "Choices": [{"Variable": "$seen", "NumericGreaterThan": 1, "Assign": {"big": true}, "Next": "P"}], "Default": "P"},
            "P": {"Type": "Pass", "Parameters": {"seen.$": "$seen", "big.$": "$big", "kept.$": "$.kept"}, "End": true}}});
        let e = execute_virtual(
            &def,
            json!({"kept": "yes"}),
            "t",
            &script(vec![TaskResult::Return(json!({"count": 3}))]),
        );
        assert_eq!(e.status, Status::Succeeded, "{:?}", e.cause);
        assert_eq!(e.output, json!({"seen": 3, "big": true, "kept": "yes"}));
    }

    #[test]
    fn the_context_counts_retries() {
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "x", "Arguments": {"try": "{% $states.context.State.RetryCount %}"}, "End": true,
                  "Retry": [{"ErrorEquals": ["E"], "MaxAttempts": 5}]}}});
        let e = execute_virtual(&def, json!({}), "t", &script(vec![throw("E"), throw("E")]));
        assert_eq!(e.output, json!({"try": 2}), "the third attempt is retry 2");
    }

    #[test]
    fn an_execution_timeout_ends_the_execution() {
        let def = json!({"QueryLanguage": "JSONata", "TimeoutSeconds": 5, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 10, "End": true}}});
        let e = execute_virtual(&def, json!({}), "t", &script(vec![]));
        assert_eq!(
            (e.status, e.error.as_deref()),
            (Status::TimedOut, Some("States.Timeout"))
        );
        assert_eq!(e.events.last().unwrap().kind, "ExecutionTimedOut");
    }
}
