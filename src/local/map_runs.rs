//! Map Runs (ListMapRuns, DescribeMapRun, UpdateMapRun), read from the MapRun* events of the
//! execution that ran them, with the counts of their iterations as they end; and
//! DescribeStateMachineForExecution.

use super::Server;
use super::api::{ApiResult, bad, now, page, str_arg};
use super::store::{Exec, Store};
use crate::engine::{Children, Journal};
use serde_json::{Value, json};
use std::sync::Arc;

/// A Map Run as its execution's events tell it.
struct Run<'a> {
    exec: &'a Exec,
    started: Value,
    start: f64,
    stop: Option<f64>,
    status: &'static str,
}

fn runs_of(exec: &Exec) -> Vec<Run<'_>> {
    let events = exec.journal.events();
    let mut runs: Vec<Run> = Vec::new();
    for e in &events {
        let d = e.details.value();
        match e.kind {
            "MapRunStarted" => runs.push(Run {
                exec,
                started: d,
                start: exec.started + e.at,
                stop: None,
                status: "RUNNING",
            }),
            "MapRunSucceeded" | "MapRunFailed" | "MapRunAborted" => {
                // the last Map Run still running is the one that ended
                if let Some(r) = runs.iter_mut().rev().find(|r| r.stop.is_none()) {
                    r.stop = Some(exec.started + e.at);
                    r.status = match e.kind {
                        "MapRunSucceeded" => "SUCCEEDED",
                        "MapRunFailed" => "FAILED",
                        _ => "ABORTED",
                    };
                }
            }
            _ => {}
        }
    }
    // an execution that ended (stopped, timed out) while its Map Run ran aborted it
    for r in runs
        .iter_mut()
        .filter(|r| r.stop.is_none() && exec.status != "RUNNING")
    {
        r.stop = exec.stopped;
        r.status = "ABORTED";
    }
    runs
}

fn find<'a>(store: &'a Store, arn: &str) -> Result<Run<'a>, super::api::ApiError> {
    store
        .executions
        .iter()
        .flat_map(runs_of)
        .find(|r| r.started["mapRunArn"] == arn)
        .ok_or_else(|| {
            bad(
                "ResourceNotFound",
                format!("Map Run Does Not Exist: '{arn}'"),
            )
        })
}

impl Server {
    pub(super) fn list_map_runs(self: &Arc<Self>, body: &Value) -> ApiResult {
        let store = self.store.lock().unwrap();
        let arn = str_arg(body, "executionArn")?;
        let exec = super::store::execution(&store, arn)?;
        let listed: Vec<Value> = runs_of(exec)
            .iter()
            .map(|r| {
                json!({"executionArn": exec.arn, "mapRunArn": r.started["mapRunArn"],
                       "stateMachineArn": r.started["stateMachineArn"], "startDate": r.start, "stopDate": r.stop})
            })
            .collect();
        let (range, next) = page(&listed, body, 100)?;
        Ok(json!({"mapRuns": listed[range].to_vec(), "nextToken": next}))
    }

    pub(super) fn describe_map_run(self: &Arc<Self>, body: &Value) -> ApiResult {
        let store = self.store.lock().unwrap();
        let arn = str_arg(body, "mapRunArn")?;
        let r = find(&store, arn)?;
        let total = r.started["total"].as_u64().unwrap_or(0);
        let (ok, failed) = r.exec.journal.map_run_ended(arn);
        let (ok, failed) = (ok as u64, failed as u64);
        let done = ok + failed;
        let (running, aborted) = match r.status {
            "RUNNING" => (total.saturating_sub(done), 0),
            _ => (0, total.saturating_sub(done)),
        };
        let counts = json!({"pending": 0, "running": running, "succeeded": ok, "failed": failed,
                            "timedOut": 0, "aborted": aborted, "total": total,
                            "resultsWritten": if r.stop.is_some() { done } else { 0 },
                            "failuresNotRedrivable": 0, "pendingRedrive": 0});
        let updated = self.map_run_updates.lock().unwrap().get(arn).cloned();
        let setting = |k: &str, default: Value| {
            updated
                .as_ref()
                .and_then(|u| u.get(k))
                .cloned()
                .unwrap_or(default)
        };
        Ok(json!({
            "mapRunArn": arn, "executionArn": r.exec.arn, "status": r.status,
            "startDate": r.start, "stopDate": r.stop,
            "maxConcurrency": setting("maxConcurrency", r.started["maxConcurrency"].clone()),
            "toleratedFailurePercentage": setting("toleratedFailurePercentage",
                json!(r.started["toleratedFailurePercentage"].as_f64().unwrap_or(0.0))),
            "toleratedFailureCount": setting("toleratedFailureCount",
                json!(r.started["toleratedFailureCount"].as_f64().unwrap_or(0.0) as u64)),
            "itemCounts": counts, "executionCounts": counts,
            "redriveCount": r.exec.redrive.count,
        }))
    }

    /// UpdateMapRun: the new concurrency and tolerance are what DescribeMapRun gives from then
    /// on (the iterations already under way keep the ones they started with).
    pub(super) fn update_map_run(self: &Arc<Self>, body: &Value) -> ApiResult {
        let arn = str_arg(body, "mapRunArn")?.to_string();
        {
            let store = self.store.lock().unwrap();
            find(&store, &arn)?;
        }
        if let Some(p) = body["toleratedFailurePercentage"]
            .as_f64()
            .filter(|p| !(0.0..=100.0).contains(p))
        {
            return Err(bad(
                "ValidationException",
                format!("toleratedFailurePercentage {p} is not between 0 and 100"),
            ));
        }
        let mut updates = self.map_run_updates.lock().unwrap();
        let u = updates.entry(arn).or_insert_with(|| json!({}));
        for k in [
            "maxConcurrency",
            "toleratedFailurePercentage",
            "toleratedFailureCount",
        ] {
            if let Some(v) = body.get(k).filter(|v| !v.is_null()) {
                u[k] = v.clone();
            }
        }
        Ok(json!({}))
    }

    /// DescribeStateMachineForExecution: the definition and role the execution ran.
    pub(super) fn describe_state_machine_for_execution(
        self: &Arc<Self>,
        body: &Value,
    ) -> ApiResult {
        let store = self.store.lock().unwrap();
        let e = super::store::execution(&store, str_arg(body, "executionArn")?)?;
        let m = store.machines.get(&e.machine_arn);
        let name = e.machine_arn.rsplit(':').next().unwrap_or_default();
        Ok(json!({
            "stateMachineArn": e.machine_arn, "name": name,
            // the text it was created with, while the machine still has the definition it ran
            "definition": m.filter(|m| m.parsed == e.definition).map(|m| m.definition.clone())
                .unwrap_or_else(|| e.definition.to_string()),
            "roleArn": e.role_arn, "updateDate": m.map(|m| m.created).unwrap_or(e.started),
            "loggingConfiguration": m.map(|m| m.logging.clone()),
            "tracingConfiguration": {"enabled": false},
            "encryptionConfiguration": {"type": "AWS_OWNED_KEY"},
        }))
    }
}

/// A Distributed Map's iterations as the child executions of its Map Run: listed by
/// `ListExecutions(mapRunArn)`, described with their Map Run, their history their start and
/// end; finished ones are forgotten like any other beyond `--keep-executions`.
pub(super) struct ChildExecutions(pub(super) Arc<Server>);

impl Children for ChildExecutions {
    fn started(&self, parent: &str, map_run: &str, index: usize, input: &Value) -> String {
        let mut store = self.0.store.lock().unwrap();
        // arn:...:mapRun:<machine>/<label>:<id> → arn:...:execution:<machine>/<label>:<id>
        let (base, rest) = map_run.split_once(":mapRun:").unwrap_or((map_run, ""));
        let (machine, _) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let name = uuid::Uuid::new_v4().to_string();
        let arn = format!("{base}:execution:{machine}:{name}");
        let parent = store
            .executions
            .get(parent)
            .map(|e| (e.definition.clone(), e.role_arn.clone()));
        let (definition, role_arn) = parent.unwrap_or_default();
        let journal = Arc::new(Journal::default());
        journal.push(
            "ExecutionStarted",
            0.0,
            json!({"input": input, "roleArn": role_arn}),
            0,
        );
        let _ = index;
        let machine_arn = format!("{base}:stateMachine:{machine}");
        let mut child = Exec::running(
            &arn,
            (&machine_arn, "STANDARD"),
            (definition, role_arn),
            (None, None),
            (name, input.to_string()),
            journal,
            Default::default(),
        );
        child.map_run = Some(map_run.to_string());
        store.executions.push(child);
        arn
    }

    fn ended(&self, child: &str, outcome: Result<&Value, (&str, &str)>) {
        let mut store = self.0.store.lock().unwrap();
        let Some(e) = store.executions.get_mut(child) else {
            return;
        };
        let at = now() - e.started;
        match outcome {
            Ok(v) => {
                e.status = "SUCCEEDED";
                e.output = Some(v.to_string());
                e.journal
                    .push("ExecutionSucceeded", at, json!({"output": v}), 0);
            }
            Err((error, cause)) => {
                e.status = "FAILED";
                (e.error, e.cause) = (Some(error.to_string()), Some(cause.to_string()));
                e.journal.push(
                    "ExecutionFailed",
                    at,
                    json!({"error": error, "cause": cause}),
                    0,
                );
            }
        }
        e.stopped = Some(now());
        e.done.notify_waiters();
        store.executions.ended(child);
    }
}

impl Server {
    /// ListExecutions with a mapRunArn: the Map Run's child executions, newest first.
    pub(super) fn list_children(self: &Arc<Self>, run: &str, body: &Value) -> ApiResult {
        let store = self.store.lock().unwrap();
        find(&store, run)?;
        let filter = body["statusFilter"].as_str();
        let all: Vec<&Exec> = store
            .executions
            .iter()
            .rev()
            .filter(|e| e.map_run.as_deref() == Some(run) && filter.is_none_or(|f| f == e.status))
            .collect();
        let (range, next) = page(&all, body, 100)?;
        let items: Vec<Value> = all[range]
            .iter()
            .map(|e| {
                json!({"executionArn": e.arn, "stateMachineArn": e.machine_arn, "name": e.name, "status": e.status,
                       "startDate": e.started, "stopDate": e.stopped, "mapRunArn": run})
            })
            .collect();
        Ok(json!({"executions": items, "nextToken": next}))
    }
}
