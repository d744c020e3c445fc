//! What executions cost, from AWS's published Step Functions prices (`prices.json`: its source
//! and date inside; `--prices FILE` for another): a Standard workflow by state transitions
//! (every state entered, and every retry of a task: AWS counts each as a transition), with the
//! monthly free tier apart; an Express workflow by requests and duration (rounded up to 100
//! ms) times memory (in 64 MB chunks, from the definition and the largest payload). Also the
//! task calls an execution makes, per service, priced where a price is known.
//!
//! The counts come from events in one shape (`execution::event_json`'s: `type`, `id`,
//! `previousEventId`, `timestamp`, `details`), whether from a recorded history or from a
//! scenario run on the local engine (`engine_events`).

use crate::error::{Error, Result};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
pub struct Prices {
    pub source: String,
    pub date: String,
    pub currency: String,
    pub standard: Standard,
    pub express: Express,
    #[serde(default)]
    pub calls: BTreeMap<String, CallPrice>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Standard {
    pub per_1000_transitions: BTreeMap<String, f64>,
    pub default_per_1000_transitions: f64,
    pub free_transitions_per_month: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Express {
    pub per_million_requests: f64,
    pub per_gb_second: f64,
    pub memory_chunk_mb: u64,
    pub duration_rounding_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CallPrice {
    pub per_million: f64,
    pub what: String,
}

const PUBLISHED: &str = include_str!("prices.json");

/// The published prices, or those of `file`.
pub fn prices(file: Option<&std::path::Path>) -> Result<Prices> {
    let (text, at) = match file {
        Some(f) => (
            std::fs::read_to_string(f).map_err(|e| {
                Error::user(format!("cannot read the prices: {e}")).at(f.display().to_string())
            })?,
            f.display().to_string(),
        ),
        None => (PUBLISHED.to_string(), "src/cost/prices.json".to_string()),
    };
    serde_json::from_str(&text).map_err(|e| {
        Error::user(format!("invalid prices file: {e}"))
            .at(format!("{at}:{}", e.line()))
            .help("start from `deploy cost --show-prices > prices.json` and change the figures")
    })
}

pub fn published() -> &'static str {
    PUBLISHED
}

/// What one execution did, as far as its bill goes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// States entered.
    pub entered: u64,
    /// Task attempts beyond the first of each state entered (each is a transition).
    pub retries: u64,
    pub seconds: f64,
    /// The largest input or output of the execution or a state, in bytes.
    pub largest_payload: usize,
    /// Task calls per service (`lambda`, `sns`, `iam`, `http`, ...).
    pub calls: BTreeMap<String, u64>,
}

impl Usage {
    pub fn transitions(&self) -> u64 {
        self.entered + self.retries
    }
}

/// The service a task calls, from its resource type (`aws-sdk:iam` → `iam`).
fn service(resource_type: &str) -> String {
    resource_type
        .strip_prefix("aws-sdk:")
        .unwrap_or(resource_type)
        .to_string()
}

/// Counts an execution's events (see the module's note on their shape).
pub fn usage(events: &[Value]) -> Usage {
    let chains = crate::execution::Chains::new(events);
    let entered_of = |e: &Value| {
        chains
            .back(e, |t| t.ends_with("StateEntered"))
            .and_then(|p| p["id"].as_u64())
    };
    let mut u = Usage::default();
    let mut attempts: BTreeMap<u64, u64> = BTreeMap::new();
    for e in events {
        let t = e["type"].as_str().unwrap_or_default();
        let d = &e["details"];
        for k in ["input", "output"] {
            u.largest_payload = u.largest_payload.max(d[k].as_str().map_or(0, str::len));
        }
        if t.ends_with("StateEntered") {
            u.entered += 1;
        } else if matches!(t, "TaskScheduled" | "LambdaFunctionScheduled") {
            let kind = if t == "TaskScheduled" {
                service(d["resourceType"].as_str().unwrap_or("task"))
            } else {
                "lambda".to_string()
            };
            *u.calls.entry(kind).or_default() += 1;
            if let Some(state) = entered_of(e) {
                *attempts.entry(state).or_default() += 1;
            }
        }
    }
    u.retries = attempts.values().map(|n| n.saturating_sub(1)).sum();
    let times: Vec<f64> = events
        .iter()
        .filter_map(|e| e["timestamp"].as_f64())
        .collect();
    if let (Some(first), Some(last)) = (times.first(), times.last()) {
        u.seconds = (last - first).max(0.0);
    }
    u
}

/// The local engine's events in the shape `usage` reads.
pub fn engine_events(exec: &crate::engine::Execution) -> Vec<Value> {
    exec.events
        .iter()
        .map(|e| {
            let d = e.details.value();
            let mut details = serde_json::Map::new();
            for k in ["name", "input", "output"] {
                if let Some(v) = d.get(k) {
                    let text = v.as_str().map(str::to_string).unwrap_or(v.to_string());
                    details.insert(k.into(), Value::String(text));
                }
            }
            if let Some(r) = d["resource"].as_str() {
                let (t, _) = crate::engine::split_resource(r);
                details.insert("resourceType".into(), Value::String(t));
            }
            json!({"id": e.id, "previousEventId": e.prev, "type": e.kind, "timestamp": e.at, "details": details})
        })
        .collect()
}

/// Standard or Express.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workflow {
    Standard,
    Express,
}

impl Workflow {
    pub fn parse(t: &str) -> Workflow {
        if t.eq_ignore_ascii_case("express") {
            Workflow::Express
        } else {
            Workflow::Standard
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Workflow::Standard => "STANDARD",
            Workflow::Express => "EXPRESS",
        }
    }
}

/// One execution's price in dollars (Step Functions only; task calls apart).
pub fn per_execution(
    u: &Usage,
    workflow: Workflow,
    region: &str,
    definition_bytes: usize,
    p: &Prices,
) -> f64 {
    match workflow {
        Workflow::Standard => u.transitions() as f64 * per_transition(region, p),
        Workflow::Express => {
            let e = &p.express;
            let step = e.duration_rounding_ms as f64 / 1000.0;
            let billed = ((u.seconds / step).ceil().max(1.0)) * step;
            let chunk = e.memory_chunk_mb * 1024 * 1024;
            let bytes = (definition_bytes + u.largest_payload) as u64;
            let chunks = bytes.div_ceil(chunk).max(1);
            let gb = (chunks * e.memory_chunk_mb) as f64 / 1024.0;
            e.per_million_requests / 1e6 + billed * gb * e.per_gb_second
        }
    }
}

pub fn per_transition(region: &str, p: &Prices) -> f64 {
    p.standard
        .per_1000_transitions
        .get(region)
        .copied()
        .unwrap_or(p.standard.default_per_1000_transitions)
        / 1000.0
}

/// A month of `executions`: (what is billed, what the free tier takes off).
pub fn monthly(
    u: &Usage,
    workflow: Workflow,
    region: &str,
    definition_bytes: usize,
    executions: u64,
    p: &Prices,
) -> (f64, f64) {
    let gross = per_execution(u, workflow, region, definition_bytes, p) * executions as f64;
    let free = match workflow {
        Workflow::Standard => {
            (u.transitions() * executions).min(p.standard.free_transitions_per_month) as f64
                * per_transition(region, p)
        }
        Workflow::Express => 0.0,
    };
    (gross - free, free)
}

/// The task calls of one execution priced where a price is known: (service, calls, dollars).
pub fn calls_priced(u: &Usage, p: &Prices) -> Vec<(String, u64, Option<f64>)> {
    u.calls
        .iter()
        .map(|(s, n)| {
            let usd = p.calls.get(s).map(|c| *n as f64 * c.per_million / 1e6);
            (s.clone(), *n, usd)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: u64, prev: u64, t: &str, at: f64, details: Value) -> Value {
        json!({"id": id, "previousEventId": prev, "type": t, "timestamp": at, "details": details})
    }

    /// A Task retried once, then a Pass: 2 states entered, 1 retry, 2 task calls to Lambda.
    fn history() -> Vec<Value> {
        vec![
            ev(1, 0, "ExecutionStarted", 100.0, json!({"input": "{}"})),
            ev(
                2,
                1,
                "TaskStateEntered",
                100.0,
                json!({"name": "Call", "input": "{}"}),
            ),
            ev(
                3,
                2,
                "TaskScheduled",
                100.0,
                json!({"resourceType": "lambda"}),
            ),
            ev(4, 3, "TaskFailed", 100.1, json!({"error": "E"})),
            ev(
                5,
                4,
                "TaskScheduled",
                101.0,
                json!({"resourceType": "lambda"}),
            ),
            ev(6, 5, "TaskSucceeded", 101.2, json!({"output": "{\"a\":1}"})),
            ev(
                7,
                6,
                "TaskStateExited",
                101.2,
                json!({"name": "Call", "output": "{\"a\":1}"}),
            ),
            ev(
                8,
                7,
                "PassStateEntered",
                101.2,
                json!({"name": "Done", "input": "{}"}),
            ),
            ev(
                9,
                8,
                "PassStateExited",
                101.2,
                json!({"name": "Done", "output": "{}"}),
            ),
            ev(10, 9, "ExecutionSucceeded", 101.25, json!({"output": "{}"})),
        ]
    }

    #[test]
    fn transitions_are_states_entered_and_retries() {
        let u = usage(&history());
        assert_eq!((u.entered, u.retries, u.transitions()), (2, 1, 3));
        assert_eq!(u.calls, BTreeMap::from([("lambda".to_string(), 2)]));
        assert!((u.seconds - 1.25).abs() < 1e-9);
    }

    #[test]
    fn standard_by_transitions_with_the_free_tier_apart_express_by_requests_and_duration() {
        let p = prices(None).unwrap();
        let u = usage(&history());
        let one = per_execution(&u, Workflow::Standard, "us-east-1", 500, &p);
        assert!((one - 3.0 * 0.000025).abs() < 1e-12, "{one}");
        // 1,000 executions: 3,000 transitions, all inside the 4,000 free
        let (billed, free) = monthly(&u, Workflow::Standard, "us-east-1", 500, 1000, &p);
        assert!(
            billed.abs() < 1e-12 && (free - 0.075).abs() < 1e-9,
            "{billed} {free}"
        );
        // another region's price
        let sp = per_execution(&u, Workflow::Standard, "sa-east-1", 500, &p);
        assert!((sp - 3.0 * 0.0000375).abs() < 1e-12);
        // Express: 1.25 s billed as 1.3 s, 64 MB (the smallest chunk): request + duration
        let ex = per_execution(&u, Workflow::Express, "us-east-1", 500, &p);
        let want = 1.0 / 1e6 + 1.3 * (64.0 / 1024.0) * 0.00001667;
        assert!((ex - want).abs() < 1e-12, "{ex} {want}");
        assert_eq!(
            calls_priced(&u, &p),
            vec![("lambda".to_string(), 2, Some(2.0 * 0.2 / 1e6))]
        );
    }
}
