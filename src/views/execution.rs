//! An execution's history as people read it, event by event, live (`deploy run`) or
//! afterwards (`deploy history`): states entered and left, task calls, retries, waits for a
//! callback with the command that answers it, the outcome. (For CI the events are JSON lines:
//! `execution::event_json`.)

use crate::execution::{event_json, tokens_in};
use crate::output::{paint, style};
use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType as T};
use serde_json::Value;
use std::collections::BTreeMap;

pub(crate) fn abbreviate(s: &str, verbose: bool) -> String {
    let one_line = match serde_json::from_str::<Value>(s) {
        Ok(v) => v.to_string(),
        Err(_) => s.replace('\n', " "),
    };
    if verbose || one_line.chars().count() <= 160 {
        one_line
    } else {
        format!(
            "{}… ({} chars, -v shows all)",
            one_line.chars().take(150).collect::<String>(),
            one_line.len()
        )
    }
}

/// Renders events for people, remembering what it needs across events (retries, callbacks).
#[derive(Default)]
pub struct Printer {
    pub verbose: bool,
    started: Option<f64>,
    /// state name -> task failures seen while in it (a new TaskScheduled after one is a retry)
    failures: BTreeMap<String, u32>,
    /// event id -> the state it belongs to (events chain to their state's StateEntered)
    state_of: BTreeMap<i64, String>,
    /// The state machine's definition, when known: it tells what a callback should answer.
    pub definition: Option<serde_json::Value>,
    /// Statuses in colour (standard output is a terminal, or colour was asked for).
    color: bool,
}

/// The fields of a callback's answer that the workflow reads: `$states.result.<field>` in the
/// waiting state's Output or Assign, else (its output being the answer) `$states.input.<field>`
/// or `$.<field>` in the state that follows. Gives the shape to suggest for `deploy approve`.
pub fn callback_fields(def: &serde_json::Value, state: &str) -> Vec<String> {
    let machine = crate::asl::Machine::parse(def);
    let Some((scope, st)) = machine.top.find(state) else {
        return vec![];
    };
    let (Some(scope), st) = (scope.states_object(), st.raw) else {
        return vec![];
    };
    let fields = |v: Option<&serde_json::Value>, prefixes: &[&str]| -> Vec<String> {
        let text = v.map(|v| v.to_string()).unwrap_or_default();
        let mut out: Vec<String> = Vec::new();
        for p in prefixes {
            for (i, _) in text.match_indices(p) {
                let rest = &text[i + p.len()..];
                let field: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !field.is_empty() && !out.contains(&field) {
                    out.push(field);
                }
            }
        }
        out
    };
    let own: Vec<String> = [st.get("Output"), st.get("Assign"), st.get("ResultSelector")]
        .into_iter()
        .flat_map(|v| fields(v, &["$states.result."]))
        .collect();
    if !own.is_empty() || st.get("Output").is_some() {
        return own;
    }
    let next = st
        .get("Next")
        .and_then(|n| n.as_str())
        .and_then(|n| scope.get(n));
    fields(next, &["$states.input.", "\"$."])
}

impl Printer {
    pub fn new(verbose: bool) -> Self {
        Printer {
            verbose,
            color: crate::output::color_stdout(),
            ..Default::default()
        }
    }

    /// The lines one event prints as.
    pub fn lines(&mut self, e: &HistoryEvent) -> Vec<String> {
        let j = event_json(e);
        let d = &j["details"];
        let ts = j["timestamp"].as_f64().unwrap_or(0.0);
        let t0 = *self.started.get_or_insert(ts);
        let at = format!("{:>7.2}s", ts - t0);
        let s = |k: &str| d[k].as_str().unwrap_or_default().to_string();
        let v = self.verbose;
        let ty = e.r#type().as_str().to_string();
        let state = if ty.ends_with("StateEntered") {
            s("name")
        } else {
            let of = self.state_of.get(&e.previous_event_id());
            of.cloned().unwrap_or_default()
        };
        self.state_of.insert(e.id(), state.clone());
        if let Some(line) = self.execution_line(e.r#type(), &at, d) {
            return vec![line];
        }
        let bad = |t: &str| paint(self.color, style::ERROR, t);
        let line = match e.r#type() {
            _ if ty.ends_with("StateEntered") => {
                let kind = ty.trim_end_matches("StateEntered");
                let wait = if kind == "Wait" { "  (waiting)" } else { "" };
                let (name, input) = (s("name"), abbreviate(&s("input"), v));
                format!("{at}  → {name} [{kind}]{wait} input {input}")
            }
            _ if ty.ends_with("StateExited") => {
                self.failures.remove(&s("name"));
                let (name, output) = (s("name"), abbreviate(&s("output"), v));
                format!("{at}  ← {name} output {output}")
            }
            T::TaskScheduled => return self.scheduled(&at, &state, d),
            T::TaskSucceeded => {
                let output = abbreviate(&s("output"), v);
                format!("{at}    {state}: task succeeded {output}")
            }
            T::TaskFailed | T::TaskTimedOut | T::TaskSubmitFailed | T::LambdaFunctionFailed => {
                *self.failures.entry(state.clone()).or_insert(0) += 1;
                let (error, cause) = (s("error"), abbreviate(&s("cause"), v));
                format!("{at}    {state}: task {}: {error}: {cause}", bad("failed"))
            }
            T::MapIterationStarted => format!("{at}    iteration {} started", d["index"]),
            T::MapIterationSucceeded => format!("{at}    iteration {} succeeded", d["index"]),
            T::MapIterationFailed => {
                format!("{at}    iteration {} {}", d["index"], bad("FAILED"))
            }
            T::MapStateStarted => format!("{at}    map over {} items", d["length"]),
            _ if self.verbose => format!("{at}    {ty}"),
            _ => return Vec::new(),
        };
        vec![line]
    }

    /// The line of an event of the execution as a whole (started, and how it ended).
    fn execution_line(&self, ty: &T, at: &str, d: &Value) -> Option<String> {
        let s = |k: &str| d[k].as_str().unwrap_or_default().to_string();
        let v = self.verbose;
        let good = |t: &str| paint(self.color, style::OK, t);
        let bad = |t: &str| paint(self.color, style::ERROR, t);
        let (error, cause) = (s("error"), s("cause"));
        Some(match ty {
            T::ExecutionStarted => {
                let input = abbreviate(&s("input"), v);
                format!("{at}  execution started, input {input}")
            }
            T::ExecutionSucceeded => {
                let output = abbreviate(&s("output"), v);
                format!("{at}  execution {}, output {output}", good("SUCCEEDED"))
            }
            T::ExecutionFailed => format!("{at}  execution {}: {error}: {cause}", bad("FAILED")),
            T::ExecutionTimedOut => {
                format!("{at}  execution {}: {error} {cause}", bad("TIMED OUT"))
            }
            T::ExecutionAborted => format!("{at}  execution {} {cause}", bad("ABORTED")),
            _ => return None,
        })
    }

    /// A task scheduled: a retry's attempt, the task, and for one that waits for a callback,
    /// how to answer it.
    fn scheduled(&self, at: &str, state: &str, d: &Value) -> Vec<String> {
        let s = |k: &str| d[k].as_str().unwrap_or_default().to_string();
        let mut out = Vec::new();
        if let Some(n) = self.failures.get(state) {
            out.push(format!("{at}    retrying {state} (attempt {})", n + 1));
        }
        let (resource, ty) = (s("resource"), s("resourceType"));
        let parameters = abbreviate(&s("parameters"), self.verbose);
        out.push(format!(
            "{at}    {state}: task {ty}:{resource} {parameters}"
        ));
        if !resource.ends_with(".waitForTaskToken") {
            return out;
        }
        let tokens = tokens_in(&s("parameters"));
        let Some(t) = tokens.first() else {
            out.push(format!(
                "{at}    waiting for a callback (the task token is not in its parameters: pass $$.Task.Token / $states.context.Task.Token to see it)"
            ));
            return out;
        };
        out.push(format!(
            "{at}    waiting for a callback with task token {t}"
        ));
        let fields = self.definition.as_ref().map(|d| callback_fields(d, state));
        let shape = match fields.unwrap_or_default() {
            f if f.is_empty() => "{...}".to_string(),
            f => {
                let f: Vec<String> = f.iter().map(|k| format!("\"{k}\": ...")).collect();
                format!("{{{}}}", f.join(", "))
            }
        };
        out.push(format!(
            "             answer with: deploy approve --token '{t}' --task-output '{shape}'"
        ));
        out.push(format!(
            "                      or: deploy reject --token '{t}' --error Rejected --cause '...'"
        ));
        out
    }
}
