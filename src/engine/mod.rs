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

mod branches;
pub mod clock;
#[cfg(test)]
mod conformance;
pub mod coverage;
pub mod intrinsics;
pub mod jsonata;
pub mod jsonpath;
pub mod probe;
mod reader;
pub mod scenario;
mod states;
mod task;
mod walk;

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
    /// A worker took the activity's task; its answer comes back with the task token.
    Started {
        worker: String,
    },
}

/// One call of a Task state.
pub struct TaskCall<'a> {
    pub state: &'a str,
    pub resource: &'a str,
    pub arguments: &'a Value,
    /// The task token, for a task that is answered with one.
    pub token: Option<&'a str>,
    /// The role the call is made as (the state's `Credentials.RoleArn`), if not the machine's.
    pub role: Option<&'a str>,
}

/// Answers Task states.
#[async_trait::async_trait]
pub trait Tasks: Send + Sync {
    async fn call(&self, call: TaskCall<'_>) -> TaskResult;

    /// Why the task cannot even be scheduled (an activity that does not exist), if so.
    async fn check(&self, _call: &TaskCall<'_>) -> Result<(), String> {
        Ok(())
    }

    /// The bytes of an object a Map's ItemReader reads as they are (a Parquet file), where
    /// `call` (`s3:getObject`) gives text: its error and cause otherwise.
    async fn fetch(&self, call: TaskCall<'_>) -> Result<Vec<u8>, (String, String)> {
        let what = call.resource.to_string();
        Err((
            "States.Runtime".into(),
            format!("{what}: no objects can be read here"),
        ))
    }
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
    reached: Mutex<Vec<Reached>>,
    /// The top-level state entered last, with its input and the variables then: where a
    /// redrive resumes.
    resume: Mutex<Option<Resume>>,
    /// The results of the iterations and branches of top-level Map and Parallel states that
    /// succeeded, by state: a redrive runs only the others.
    done: Mutex<HashMap<String, Done>>,
    /// Each Map Run's iterations that ended so far: (succeeded, failed).
    map_runs: Mutex<HashMap<String, (usize, usize)>>,
}

/// Where a redrive resumes.
#[derive(Debug, Clone)]
struct Resume {
    state: String,
    input: Value,
    vars: Map<String, Value>,
}

/// Results that succeeded, by iteration or branch index.
type Done = std::collections::BTreeMap<usize, Value>;

/// A way out of a state that an execution took, beyond entering it: what coverage counts
/// (`deploy test --coverage`). States are numbered as the definition lists them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reached {
    /// A Choice state's rule (its index in `Choices`) matched.
    Rule(String, usize),
    /// No rule matched: the Choice state's Default.
    Default(String),
    /// A retrier (its index in `Retry`) retried the state.
    Retry(String, usize),
    /// A catcher (its index in `Catch`) caught the state's error.
    Catch(String, usize),
}

impl Journal {
    /// One more iteration of a Map Run ended.
    pub fn map_run_progress(&self, map_run: &str, succeeded: bool) {
        let mut runs = self.map_runs.lock().unwrap();
        let e = runs.entry(map_run.to_string()).or_default();
        match succeeded {
            true => e.0 += 1,
            false => e.1 += 1,
        }
    }

    /// How many of a Map Run's iterations succeeded and failed so far.
    pub fn map_run_ended(&self, map_run: &str) -> (usize, usize) {
        self.map_runs
            .lock()
            .unwrap()
            .get(map_run)
            .copied()
            .unwrap_or_default()
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    fn reach(&self, r: Reached) {
        self.reached.lock().unwrap().push(r);
    }

    /// Whether the execution can resume where it stopped (it entered a state).
    pub fn resumable(&self) -> bool {
        self.resume.lock().unwrap().is_some()
    }

    /// An iteration or branch `index` of the top-level state `state` succeeded with `v`.
    fn done(&self, state: &str, index: usize, v: &Value) {
        let mut done = self.done.lock().unwrap();
        done.entry(state.to_string())
            .or_default()
            .insert(index, v.clone());
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
    /// Choice rules, Retry and Catch taken, in order.
    pub reached: Vec<Reached>,
    pub events: Vec<Event>,
    /// Seconds the execution took (virtual on the paused clock).
    pub seconds: f64,
}

/// Who is running and how.
#[derive(Clone)]
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
    /// Where a Distributed Map's iterations are recorded as its Map Run's child executions.
    pub children: Option<std::sync::Arc<dyn Children>>,
}

/// Records a Distributed Map's iterations as the child executions of its Map Run.
pub trait Children: Send + Sync {
    /// An iteration of `map_run` (the `index`th) of the execution `parent` started with
    /// `input`: the child's ARN.
    fn started(&self, parent: &str, map_run: &str, index: usize, input: &Value) -> String;
    /// It ended: its output, or its error and cause.
    fn ended(&self, child: &str, outcome: Result<&Value, (&str, &str)>);
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
            children: None,
        }
    }
}

/// A failure travelling up: an error name and its cause.
#[derive(Debug, Clone)]
struct Failure {
    error: String,
    cause: String,
    /// A runtime error of the state being run (not a task's error nor a Fail state's), whose
    /// cause AWS words with the state and the event it entered at (`Run::at_state`).
    runtime: bool,
}

fn fail(error: &str, cause: impl Into<String>) -> Failure {
    Failure {
        error: error.into(),
        cause: cause.into(),
        runtime: matches!(error, "States.Runtime" | "States.QueryEvaluationError"),
    }
}

/// A failure that is what it says (a task's error, a Fail state's), not a runtime error.
fn thrown(error: String, cause: String) -> Failure {
    Failure {
        error,
        cause,
        runtime: false,
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
    iso_cache: Mutex<(u64, String)>,
    /// Time already gone when this run began (a redrive goes on from it).
    offset: Duration,
    /// On a redrive: the state it resumes at, with the iterations or branches of it that
    /// succeeded before (taken by the first run of that state).
    reuse: Mutex<Option<(String, Done)>>,
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
const TOKEN_PREFIX: &str = "AQCEAAAAKgAAAAMAAAAAAAAAA";

fn new_token() -> String {
    format!(
        "{TOKEN_PREFIX}{:016x}{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

/// Whether a task token is of the form this engine issues them in (`new_token`).
pub fn is_token(token: &str) -> bool {
    token
        .strip_prefix(TOKEN_PREFIX)
        .is_some_and(|rest| rest.len() == 48 && rest.chars().all(|c| c.is_ascii_hexdigit()))
}

impl<'a> Run<'a> {
    /// A run that starts now on `opts`'s clock.
    fn new(
        tasks: &'a dyn Tasks,
        journal: &'a Journal,
        opts: &'a Options,
        wall_start: SystemTime,
        context: Value,
    ) -> Run<'a> {
        Run {
            tasks,
            journal,
            opts,
            clock: opts.clock.start(),
            wall_start,
            context,
            transitions: AtomicUsize::new(0),
            iso_cache: Mutex::default(),
            offset: Duration::ZERO,
            reuse: Mutex::default(),
        }
    }
}

/// `arn:aws:states:::aws-sdk:iam:createUser` → (`aws-sdk:iam`, `createUser`); `lambda:invoke` → (`lambda`, `invoke`).
pub fn split_resource(resource: &str) -> (String, String) {
    if asl::is_lambda_function(resource) {
        return ("lambda".into(), "invoke".into());
    }
    let r = asl::integration(resource).unwrap_or(resource);
    match r.rsplit_once(':') {
        Some((t, op)) => (t.into(), op.into()),
        None => (r.into(), String::new()),
    }
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
    let run = Run::new(tasks, journal, opts, wall_start, context);
    run.event(
        "ExecutionStarted",
        json!({"input": input, "roleArn": opts.role_arn}),
    );
    let limit = definition["TimeoutSeconds"].as_f64();
    let result = run.bounded(&machine, input, limit, None).await;
    run.concluded(result)
}

/// How a redrive resumes an execution: its how-manieth, when the execution first started, and
/// when this redrive began.
pub struct Redrive {
    pub count: u64,
    pub started: SystemTime,
    pub at: SystemTime,
}

/// Redrives an execution that did not succeed, recording into its own `journal`: it resumes
/// at the top-level state that did not succeed, with the input and variables it had, and runs
/// again only the iterations and branches of a Map or Parallel state that did not succeed.
pub async fn redrive(
    definition: &Value,
    input: Value,
    opts: &Options,
    tasks: &dyn Tasks,
    journal: &Journal,
    again: Redrive,
) -> Execution {
    let chain = std::cell::Cell::new(journal.len());
    LAST_EVENT
        .scope(
            chain,
            redrive_execution(definition, input, opts, tasks, journal, again),
        )
        .await
}

async fn redrive_execution(
    definition: &Value,
    input: Value,
    opts: &Options,
    tasks: &dyn Tasks,
    journal: &Journal,
    again: Redrive,
) -> Execution {
    let resume = journal.resume.lock().unwrap().clone();
    let offset = again.at.duration_since(again.started).unwrap_or_default();
    let context = json!({
        "Execution": {"Id": opts.execution_arn, "Name": opts.name, "Input": input, "StartTime": iso(again.started),
                      "RoleArn": opts.role_arn, "RedriveCount": again.count, "RedriveTime": iso(again.at)},
        "StateMachine": {"Id": opts.machine_arn, "Name": opts.machine_name}});
    let machine = asl::Machine::parse(definition);
    let reuse = resume.as_ref().map(|r| {
        let done = journal.done.lock().unwrap();
        (
            r.state.clone(),
            done.get(&r.state).cloned().unwrap_or_default(),
        )
    });
    let run = Run {
        offset,
        reuse: Mutex::new(reuse),
        ..Run::new(tasks, journal, opts, again.started, context)
    };
    run.event("ExecutionRedriven", json!({"redriveCount": again.count}));
    // the time limit counts from the redrive (AWS restarts the execution's clock)
    let limit = definition["TimeoutSeconds"].as_f64();
    let result = run.bounded(&machine, input, limit, resume).await;
    run.concluded(result)
}

impl Run<'_> {
    /// The execution's last event, and what it ended as.
    fn concluded(&self, result: Result<Result<Value, Failure>, Failure>) -> Execution {
        let (run, journal) = (self, self.journal);
        let result_timed_out = result.is_err();
        let (status, output, error, cause) = match result {
            Ok(Ok(out)) => {
                run.event("ExecutionSucceeded", json!({"output": out}));
                (Status::Succeeded, out, None, None)
            }
            Ok(Err(f)) | Err(f) => {
                let (status, kind) = match result_timed_out {
                    true => (Status::TimedOut, "ExecutionTimedOut"),
                    false => (Status::Failed, "ExecutionFailed"),
                };
                run.event(kind, json!({"error": f.error, "cause": f.cause}));
                // AWS leaves out a cause that is empty
                let cause = Some(f.cause).filter(|c| !c.is_empty());
                (status, Value::Null, Some(f.error), cause)
            }
        };
        let path = journal.path.lock().unwrap().clone();
        Execution {
            status,
            output,
            error,
            cause,
            path,
            reached: journal.reached.lock().unwrap().clone(),
            events: journal.events(),
            seconds: run.now(),
        }
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
        assert_eq!(e.error.as_deref(), Some("States.Timeout"));
        assert_eq!(e.cause, None, "AWS gives a missed heartbeat no cause");
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

    /// Fails the task of the item named in `bad` until told otherwise, counting the calls.
    struct Flaky {
        bad: Mutex<Option<Value>>,
        calls: Mutex<Vec<Value>>,
    }
    #[async_trait::async_trait]
    impl Tasks for Flaky {
        async fn call(&self, call: TaskCall<'_>) -> TaskResult {
            self.calls.lock().unwrap().push(call.arguments.clone());
            if self.bad.lock().unwrap().as_ref() == Some(call.arguments) {
                return throw("Broken");
            }
            TaskResult::Return(json!({"done": call.arguments, "redrives": call.arguments}))
        }
    }

    /// Runs `def` with the task whose arguments are `bad` failing, then redrives it with every
    /// task working: each run, with the arguments of the calls it made.
    fn fail_then_redrive(def: &Value, input: Value, bad: Value) -> [(Execution, Vec<Value>); 2] {
        let tasks = Flaky {
            bad: Mutex::new(Some(bad)),
            calls: Mutex::default(),
        };
        let journal = Journal::default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let opts = Options::local("t");
        let first = rt.block_on(execute(def, input.clone(), &opts, &tasks, &journal));
        let first_calls: Vec<Value> = tasks.calls.lock().unwrap().drain(..).collect();
        *tasks.bad.lock().unwrap() = None;
        let again = Redrive {
            count: 1,
            started: SystemTime::now(),
            at: SystemTime::now(),
        };
        let e = rt.block_on(redrive(def, input, &opts, &tasks, &journal, again));
        let calls = tasks.calls.lock().unwrap().clone();
        [(first, first_calls), (e, calls)]
    }

    #[test]
    fn a_redrive_resumes_at_the_state_that_failed_and_reruns_only_the_failed_iterations() {
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "First", "States": {
            "First": {"Type": "Pass", "Assign": {"seen": "{% $states.input.n %}"}, "Next": "M"},
            "M": {"Type": "Map", "Items": "{% [1, 2, 3] %}", "Next": "Last",
                  "ItemProcessor": {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "x", "End": true}}}},
            "Last": {"Type": "Pass", "Output": "{% {'results': $states.input, 'seen': $seen, 'redrives': $states.context.Execution.RedriveCount} %}", "End": true}}});
        let [(first, first_calls), (e, calls)] = fail_then_redrive(&def, json!({"n": 7}), json!(2));
        assert_eq!(first.error.as_deref(), Some("Broken"));
        // the inline Map stops at its first failure: item 3 did not run
        assert_eq!(first_calls, vec![json!(1), json!(2)]);
        assert_eq!(e.status, Status::Succeeded, "{:?}", e.cause);
        assert_eq!(
            calls,
            vec![json!(2), json!(3)],
            "the iteration that succeeded did not run again"
        );
        assert_eq!(
            e.output["seen"],
            json!(7),
            "the variables of the first run are kept"
        );
        assert_eq!(e.output["redrives"], json!(1));
        assert_eq!(e.output["results"][0]["done"], json!(1));
        let kinds: Vec<&str> = e.events.iter().map(|ev| ev.kind).collect();
        let at = kinds
            .iter()
            .position(|k| *k == "ExecutionRedriven")
            .expect("a redriven event");
        assert_eq!(kinds[at - 1], "ExecutionFailed");
        assert_eq!(
            kinds[at + 1],
            "MapStateEntered",
            "it resumes at the Map, not at First"
        );
        assert_eq!(
            kinds.iter().filter(|k| **k == "PassStateEntered").count(),
            2,
            "First once, Last once"
        );
    }

    #[test]
    fn a_redriven_parallel_runs_again_only_the_branch_that_failed() {
        let task = |n: u64| json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "x", "Arguments": n, "End": true}}});
        let def = json!({"QueryLanguage": "JSONata", "StartAt": "P", "States": {
            "P": {"Type": "Parallel", "Branches": [task(1), task(2), task(3)], "End": true}}});
        let [(first, ran_first), (e, ran_again)] = fail_then_redrive(&def, json!({}), json!(2));
        assert_eq!(first.error.as_deref(), Some("Broken"));
        assert_eq!(e.status, Status::Succeeded, "{:?}", e.cause);
        assert!(ran_again.contains(&json!(2)), "{ran_again:?}");
        assert!(
            !ran_again.contains(&json!(1)),
            "branch 1 succeeded before (first run: {ran_first:?}) and does not run again: {ran_again:?}"
        );
        assert_eq!(e.output[0]["done"], json!(1), "its result is kept");
        assert_eq!(e.output[1]["done"], json!(2));
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
