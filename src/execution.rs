//! Executions: follow one live (or print a past one) from its event history, for people (one
//! line per state entered and exited, task outcomes, retries, waits, callbacks with the exact
//! command to answer them) or as JSON lines; and the exit code an outcome maps to.

use crate::aws::{Ctx, api_error};
use crate::error::{Class, Error, Result};
use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType as T};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl Outcome {
    /// Exit codes of `run` and `history` (documented in docs/reference.md).
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Succeeded => 0,
            Outcome::Failed => 7,
            Outcome::TimedOut => 8,
            Outcome::Aborted => 9,
        }
    }
}

/// An event as JSON: id, previous id, type, timestamp, and the fields of its details.
pub fn event_json(e: &HistoryEvent) -> Value {
    let mut d = Map::new();
    execution_and_state_details(e, &mut d);
    task_details(e, &mut d);
    lambda_and_map_details(e, &mut d);
    // AWS cuts inputs and outputs over its payload limit from the history, and says so
    if truncated(e) {
        d.insert("truncated".into(), Value::Bool(true));
    }
    json!({
        "id": e.id(),
        "previousEventId": e.previous_event_id(),
        "timestamp": e.timestamp().secs() as f64 + e.timestamp().subsec_nanos() as f64 / 1e9,
        "type": e.r#type().as_str(),
        "details": d,
    })
}

fn put(d: &mut Map<String, Value>, k: &str, v: Option<&str>) {
    if let Some(v) = v {
        d.insert(k.into(), Value::String(v.to_string()));
    }
}

fn execution_and_state_details(e: &HistoryEvent, d: &mut Map<String, Value>) {
    if let Some(x) = e.execution_started_event_details() {
        put(d, "input", x.input());
        put(d, "roleArn", x.role_arn());
    }
    if let Some(x) = e.execution_succeeded_event_details() {
        put(d, "output", x.output());
    }
    if let Some(x) = e.execution_failed_event_details() {
        put(d, "error", x.error());
        put(d, "cause", x.cause());
    }
    if let Some(x) = e.execution_timed_out_event_details() {
        put(d, "error", x.error());
        put(d, "cause", x.cause());
    }
    if let Some(x) = e.execution_aborted_event_details() {
        put(d, "error", x.error());
        put(d, "cause", x.cause());
    }
    if let Some(x) = e.state_entered_event_details() {
        put(d, "name", Some(x.name()));
        put(d, "input", x.input());
    }
    if let Some(x) = e.state_exited_event_details() {
        put(d, "name", Some(x.name()));
        put(d, "output", x.output());
    }
}

fn task_details(e: &HistoryEvent, d: &mut Map<String, Value>) {
    if let Some(x) = e.task_scheduled_event_details() {
        put(d, "resourceType", Some(x.resource_type()));
        put(d, "resource", Some(x.resource()));
        put(d, "parameters", Some(x.parameters()));
    }
    if let Some(x) = e.task_started_event_details() {
        put(d, "resourceType", Some(x.resource_type()));
        put(d, "resource", Some(x.resource()));
    }
    if let Some(x) = e.task_succeeded_event_details() {
        put(d, "resourceType", Some(x.resource_type()));
        put(d, "resource", Some(x.resource()));
        put(d, "output", x.output());
    }
    if let Some(x) = e.task_failed_event_details() {
        put(d, "resourceType", Some(x.resource_type()));
        put(d, "resource", Some(x.resource()));
        put(d, "error", x.error());
        put(d, "cause", x.cause());
    }
    if let Some(x) = e.task_timed_out_event_details() {
        put(d, "resourceType", Some(x.resource_type()));
        put(d, "resource", Some(x.resource()));
        put(d, "error", x.error());
        put(d, "cause", x.cause());
    }
    if let Some(x) = e.task_submit_failed_event_details() {
        put(d, "error", x.error());
        put(d, "cause", x.cause());
    }
}

fn lambda_and_map_details(e: &HistoryEvent, d: &mut Map<String, Value>) {
    if let Some(x) = e.lambda_function_scheduled_event_details() {
        put(d, "resource", Some(x.resource()));
        put(d, "input", x.input());
    }
    if let Some(x) = e.lambda_function_succeeded_event_details() {
        put(d, "output", x.output());
    }
    if let Some(x) = e.lambda_function_timed_out_event_details() {
        put(d, "error", x.error());
        put(d, "cause", x.cause());
    }
    if let Some(x) = e.lambda_function_failed_event_details() {
        put(d, "error", x.error());
        put(d, "cause", x.cause());
    }
    if let Some(x) = e.map_iteration_started_event_details() {
        put(d, "name", x.name());
        d.insert("index".into(), json!(x.index()));
    }
    for x in [
        e.map_iteration_succeeded_event_details(),
        e.map_iteration_failed_event_details(),
        e.map_iteration_aborted_event_details(),
    ]
    .into_iter()
    .flatten()
    {
        put(d, "name", x.name());
        d.insert("index".into(), json!(x.index()));
    }
    if let Some(x) = e.map_state_started_event_details() {
        d.insert("length".into(), json!(x.length()));
    }
}

/// An input or output of the event was cut from the history (over AWS's payload limit).
fn truncated(e: &HistoryEvent) -> bool {
    [
        e.execution_started_event_details()
            .and_then(|x| x.input_details()),
        e.execution_succeeded_event_details()
            .and_then(|x| x.output_details()),
        e.state_entered_event_details()
            .and_then(|x| x.input_details()),
        e.state_exited_event_details()
            .and_then(|x| x.output_details()),
        e.task_succeeded_event_details()
            .and_then(|x| x.output_details()),
    ]
    .into_iter()
    .flatten()
    .any(|d| d.truncated())
}

/// Events as `event_json` writes them, found by id, to follow `previousEventId` back: AWS links
/// each event to the one before it in its own branch, so the chain from a task's answer leads
/// to its scheduling and to the state it belongs to, whatever ran at the same time.
pub struct Chains<'a>(std::collections::BTreeMap<u64, &'a Value>);

impl<'a> Chains<'a> {
    pub fn new(events: &'a [Value]) -> Chains<'a> {
        Chains(
            events
                .iter()
                .filter_map(|e| Some((e["id"].as_u64()?, e)))
                .collect(),
        )
    }

    /// The nearest event before `from` in its chain whose type `wanted` accepts.
    pub fn back(&self, from: &Value, wanted: impl Fn(&str) -> bool) -> Option<&'a Value> {
        let mut at = self.0.get(&from["previousEventId"].as_u64()?).copied();
        while let Some(e) = at {
            if wanted(e["type"].as_str().unwrap_or_default()) {
                return Some(e);
            }
            at = self.0.get(&e["previousEventId"].as_u64()?).copied();
        }
        None
    }
}

/// Candidate task tokens in a task's parameters: long runs of token characters.
pub fn tokens_in(parameters: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut strings = Vec::new();
    fn collect(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
            Value::Object(m) => m.values().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    match serde_json::from_str::<Value>(parameters) {
        Ok(v) => collect(&v, &mut strings),
        Err(_) => strings.push(parameters.to_string()),
    }
    let re = regex::Regex::new(r"[A-Za-z0-9+/=_-]{32,}").unwrap();
    for s in strings {
        for m in re.find_iter(&s) {
            let t = m.as_str().to_string();
            if !t.starts_with("arn") && !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

/// The callbacks an execution waits for: (state, token) of every `.waitForTaskToken` task
/// scheduled and not yet ended, in the order they were scheduled. Events chain to the task
/// they belong to through their previous event id.
pub fn pending_tokens(events: &[HistoryEvent]) -> Vec<(String, String)> {
    let mut task_of: BTreeMap<i64, i64> = BTreeMap::new();
    let mut state_of: BTreeMap<i64, String> = BTreeMap::new();
    let mut pending: Vec<(i64, String, String)> = Vec::new();
    for e in events {
        if let Some(d) = e.state_entered_event_details() {
            state_of.insert(e.id(), d.name().to_string());
        } else if let Some(s) = state_of.get(&e.previous_event_id()).cloned() {
            state_of.insert(e.id(), s);
        }
        match e.r#type() {
            T::TaskScheduled => {
                task_of.insert(e.id(), e.id());
                let d = e.task_scheduled_event_details();
                if d.is_some_and(|d| d.resource().ends_with(".waitForTaskToken")) {
                    if let Some(t) = tokens_in(d.map(|d| d.parameters()).unwrap_or_default())
                        .into_iter()
                        .next()
                    {
                        pending.push((
                            e.id(),
                            state_of.get(&e.id()).cloned().unwrap_or_default(),
                            t,
                        ));
                    }
                }
            }
            _ => {
                if let Some(task) = task_of.get(&e.previous_event_id()).copied() {
                    task_of.insert(e.id(), task);
                    if matches!(
                        e.r#type(),
                        T::TaskSucceeded
                            | T::TaskFailed
                            | T::TaskTimedOut
                            | T::TaskSubmitFailed
                            | T::TaskStartFailed
                    ) {
                        pending.retain(|(id, _, _)| *id != task);
                    }
                }
            }
        }
    }
    pending.into_iter().map(|(_, s, t)| (s, t)).collect()
}

pub fn outcome_of(e: &HistoryEvent) -> Option<Outcome> {
    match e.r#type() {
        T::ExecutionSucceeded => Some(Outcome::Succeeded),
        T::ExecutionFailed => Some(Outcome::Failed),
        T::ExecutionTimedOut => Some(Outcome::TimedOut),
        T::ExecutionAborted => Some(Outcome::Aborted),
        _ => None,
    }
}

/// Every event so far, following pagination.
pub async fn history(ctx: &Ctx, execution_arn: &str) -> Result<Vec<HistoryEvent>> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = ctx
            .sfn
            .get_execution_history()
            .execution_arn(execution_arn)
            .max_results(1000)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(s) if s.is_execution_does_not_exist() => {
                    Error::user(format!("no execution {execution_arn}"))
                }
                Some(s) if s.is_invalid_arn() => {
                    Error::user(format!("{execution_arn:?} is not an execution ARN"))
                }
                _ => api_error("GetExecutionHistory", &e),
            })?;
        out.extend(page.events().iter().cloned());
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
}

/// What `follow` checks of an execution on an endpoint that may not run it: an emulator that
/// stores state machines without executing them (moto with a JSONata definition) either
/// answers with a placeholder history of states the definition does not have, or never moves.
#[derive(Debug, Default)]
pub struct Watch {
    /// Every state name of the definition (nested ones included), when known.
    pub states: Option<std::collections::HashSet<String>>,
    /// How long an execution may show nothing after its start before it is reported as not
    /// run (set for endpoints other than AWS: on any engine the first state enters at once).
    pub stall_limit: Option<Duration>,
    /// The endpoint the execution runs on, for the message.
    pub endpoint: String,
    /// The state machine's definition, when it could be read.
    pub definition: Option<serde_json::Value>,
    /// Events up to this id are already known (a redrive follows only what comes after).
    pub after: i64,
}

/// Every state name of a definition, nested Parallel branches and Map processors included.
pub fn state_names(def: &serde_json::Value) -> std::collections::HashSet<String> {
    crate::asl::Machine::parse(def)
        .top
        .all_states()
        .into_iter()
        .map(|s| s.name.to_string())
        .collect()
}

fn not_run(watch: &Watch, what: String) -> Error {
    Error::aws(format!("{} does not run this state machine: {what}", watch.endpoint)).help(
        "moto stores state machines but runs only JSONPath ones: run Step Functions on `deploy local` \
         (scripts/quickstart starts it) and point AWS_ENDPOINT_URL_SFN at it",
    )
}

/// Follows an execution until it ends, handing every new event to `emit` in order. Polls
/// quickly while events arrive and backs off (up to 2 s) while nothing happens.
pub async fn follow(
    ctx: &Ctx,
    execution_arn: &str,
    watch: &Watch,
    mut emit: impl FnMut(&HistoryEvent),
) -> Result<Outcome> {
    let mut seen = watch.after;
    let mut delay = Duration::from_millis(100);
    let started = std::time::Instant::now();
    loop {
        let events: Vec<HistoryEvent> = history(ctx, execution_arn)
            .await?
            .into_iter()
            .filter(|e| e.id() > seen)
            .collect();
        let mut progressed = false;
        for e in &events {
            if let (Some(known), Some(d)) = (&watch.states, e.state_entered_event_details()) {
                if !known.contains(d.name()) {
                    return Err(not_run(
                        watch,
                        format!(
                            "its history of {execution_arn} enters a state `{}` that the definition does not have (a placeholder execution)",
                            d.name()
                        ),
                    ));
                }
            }
            emit(e);
            seen = e.id();
            progressed = true;
            if let Some(o) = outcome_of(e) {
                return Ok(o);
            }
        }
        if let Some(limit) = watch.stall_limit {
            if seen <= watch.after + 1 && started.elapsed() > limit {
                return Err(not_run(
                    watch,
                    format!(
                        "{execution_arn} has shown nothing past its start for {} s",
                        limit.as_secs()
                    ),
                ));
            }
        }
        delay = if progressed {
            Duration::from_millis(100)
        } else {
            (delay * 2).min(Duration::from_secs(2))
        };
        tokio::time::sleep(delay).await;
    }
}

/// The error a finished execution exits with, if it did not succeed.
pub fn outcome_result(o: Outcome, arn: &str) -> Result<()> {
    match o {
        Outcome::Succeeded => Ok(()),
        other => Err(Error::new(
            Class::Execution(other.exit_code()),
            format!("execution {arn} did not succeed ({other:?})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::execution::{abbreviate, callback_fields};

    #[test]
    fn tokens_are_found_in_messages() {
        let p = r#"{"TopicArn":"arn:aws:sns:us-east-1:123456789012:create-new-user","Message":"Task token =>AQCEAAAAKgAAAAMAAAAAAAAAAa1b2c3d4e5f6g7h8i9j0k"}"#;
        assert_eq!(
            tokens_in(p),
            vec!["AQCEAAAAKgAAAAMAAAAAAAAAAa1b2c3d4e5f6g7h8i9j0k".to_string()]
        );
        assert_eq!(
            tokens_in(r#"{"Message":"3f1c6a2e-1b7d-4f0e-9a3b-2c5d8e9f0a1b"}"#),
            vec!["3f1c6a2e-1b7d-4f0e-9a3b-2c5d8e9f0a1b"]
        );
        assert!(
            tokens_in(
                r#"{"TopicArn":"arn:aws:sns:us-east-1:123456789012:a-very-long-topic-name-here"}"#
            )
            .is_empty()
        );
    }

    #[test]
    fn long_values_are_abbreviated_unless_verbose() {
        let long = format!("{{\"a\": \"{}\"}}", "x".repeat(400));
        assert!(abbreviate(&long, false).contains("-v shows all"));
        assert_eq!(
            abbreviate(&long, true).len(),
            long.len() - 1,
            "compact JSON, whole"
        );
    }

    #[test]
    fn a_callback_answer_is_suggested_with_the_fields_the_workflow_reads() {
        let published = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/published/create-new-user/jsonata.json"
        ));
        let def: serde_json::Value = serde_json::from_str(&published.unwrap()).unwrap();
        assert_eq!(callback_fields(&def, "SNS Publish"), ["admin"]);
        let own = serde_json::json!({"StartAt": "W", "States": {"W": {"Type": "Task", "Resource": "x", "End": true,
            "Output": {"ok": "{% $states.result.approved and $states.result.level > 1 %}"}}}});
        assert_eq!(callback_fields(&own, "W"), ["approved", "level"]);
        let path = serde_json::json!({"StartAt": "W", "States": {"W": {"Type": "Task", "Resource": "x", "Next": "C"},
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.decision", "StringEquals": "yes", "Next": "W"}], "Default": "W"}}});
        assert_eq!(callback_fields(&path, "W"), ["decision"]);
    }

    #[test]
    fn state_names_include_nested_ones() {
        let def = serde_json::json!({"StartAt": "P", "States": {
            "P": {"Type": "Parallel", "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}], "Next": "M"},
            "M": {"Type": "Map", "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}}, "End": true}}});
        let mut names: Vec<String> = state_names(&def).into_iter().collect();
        names.sort();
        assert_eq!(names, ["B", "I", "M", "P"]);
    }

    #[test]
    fn outcomes_map_to_exit_codes() {
        assert_eq!(Outcome::Succeeded.exit_code(), 0);
        assert_eq!(Outcome::Failed.exit_code(), 7);
        assert_eq!(Outcome::TimedOut.exit_code(), 8);
        assert_eq!(Outcome::Aborted.exit_code(), 9);
    }
}
