//! An execution's history as people read it, event by event, live (`deploy run`) or
//! afterwards (`deploy history`): states entered and left, task calls, retries, waits for a
//! callback with the command that answers it, the outcome. (For CI the events are JSON lines:
//! `execution::event_json`.)

use crate::execution::{event_json, tokens_in};
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
            self.state_of
                .get(&e.previous_event_id())
                .cloned()
                .unwrap_or_default()
        };
        self.state_of.insert(e.id(), state.clone());
        let mut out = Vec::new();
        use crate::output::{paint, style};
        let (good, bad) = (
            |t: &str| paint(self.color, style::OK, t),
            |t: &str| paint(self.color, style::ERROR, t),
        );
        match e.r#type() {
            T::ExecutionStarted => out.push(format!(
                "{at}  execution started, input {}",
                abbreviate(&s("input"), v)
            )),
            T::ExecutionSucceeded => out.push(format!(
                "{at}  execution {}, output {}",
                good("SUCCEEDED"),
                abbreviate(&s("output"), v)
            )),
            T::ExecutionFailed => out.push(format!(
                "{at}  execution {}: {}: {}",
                bad("FAILED"),
                s("error"),
                s("cause")
            )),
            T::ExecutionTimedOut => out.push(format!(
                "{at}  execution {}: {} {}",
                bad("TIMED OUT"),
                s("error"),
                s("cause")
            )),
            T::ExecutionAborted => {
                out.push(format!("{at}  execution {} {}", bad("ABORTED"), s("cause")))
            }
            _ if ty.ends_with("StateEntered") => {
                let kind = ty.trim_end_matches("StateEntered");
                let wait = if kind == "Wait" { "  (waiting)" } else { "" };
                out.push(format!(
                    "{at}  → {} [{kind}]{wait} input {}",
                    s("name"),
                    abbreviate(&s("input"), v)
                ));
            }
            _ if ty.ends_with("StateExited") => {
                self.failures.remove(&s("name"));
                out.push(format!(
                    "{at}  ← {} output {}",
                    s("name"),
                    abbreviate(&s("output"), v)
                ));
            }
            T::TaskScheduled => {
                if let Some(n) = self.failures.get(&state) {
                    out.push(format!("{at}    retrying {state} (attempt {})", n + 1));
                }
                let resource = s("resource");
                out.push(format!(
                    "{at}    {state}: task {}:{resource} {}",
                    s("resourceType"),
                    abbreviate(&s("parameters"), v)
                ));
                if resource.ends_with(".waitForTaskToken") {
                    let tokens = tokens_in(&s("parameters"));
                    match tokens.first() {
                        Some(t) => {
                            out.push(format!("{at}    waiting for a callback with task token {t}"));
                            let shape = match self.definition.as_ref().map(|d| callback_fields(d, &state)).unwrap_or_default() {
                                f if f.is_empty() => "{...}".to_string(),
                                f => format!("{{{}}}", f.iter().map(|k| format!("\"{k}\": ...")).collect::<Vec<_>>().join(", ")),
                            };
                            out.push(format!("             answer with: deploy approve --token '{t}' --task-output '{shape}'"));
                            out.push(format!("                      or: deploy reject --token '{t}' --error Rejected --cause '...'"));
                        }
                        None => out.push(format!(
                            "{at}    waiting for a callback (the task token is not in its parameters: pass $$.Task.Token / $states.context.Task.Token to see it)"
                        )),
                    }
                }
            }
            T::TaskSucceeded => out.push(format!(
                "{at}    {state}: task succeeded {}",
                abbreviate(&s("output"), v)
            )),
            T::TaskFailed | T::TaskTimedOut | T::TaskSubmitFailed | T::LambdaFunctionFailed => {
                *self.failures.entry(state.clone()).or_insert(0) += 1;
                out.push(format!(
                    "{at}    {state}: task {}: {}: {}",
                    bad("failed"),
                    s("error"),
                    abbreviate(&s("cause"), v)
                ));
            }
            T::MapIterationStarted => out.push(format!("{at}    iteration {} started", d["index"])),
            T::MapIterationSucceeded => {
                out.push(format!("{at}    iteration {} succeeded", d["index"]))
            }
            T::MapIterationFailed => out.push(format!(
                "{at}    iteration {} {}",
                d["index"],
                bad("FAILED")
            )),
            T::MapStateStarted => out.push(format!("{at}    map over {} items", d["length"])),
            _ if self.verbose => out.push(format!("{at}    {ty}")),
            _ => {}
        }
        out
    }
}
