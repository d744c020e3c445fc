//! Execution operations: start (asynchronously, or synchronously for Express machines), stop,
//! describe, list, history, and the answers to task tokens.

use super::Server;
use super::api::*;
use super::history;
use super::store::*;
use super::tasks::LocalTasks;
use crate::engine::scenario::{self, Mocked};
use crate::engine::{self, Callback, Journal, Options};
use serde_json::{Value, json};
use std::sync::Arc;

impl Server {
    pub(super) fn stop_execution(self: &Arc<Self>, body: &Value) -> ApiResult {
        let arn = str_arg(body, "executionArn")?;
        let mut store = self.store.lock().unwrap();
        let e = execution_mut(&mut store, arn)?;
        let stopped = now();
        if e.status == "RUNNING" {
            e.cancel.cancel();
            if let Some(h) = e.abort.take() {
                h.abort();
            }
            let (error, cause) = (
                body["error"].as_str().map(str::to_string),
                body["cause"].as_str().map(str::to_string),
            );
            e.journal.push(
                "ExecutionAborted",
                stopped - e.started,
                json!({"error": error, "cause": cause}),
                0,
            );
            (e.status, e.stopped, e.error, e.cause) = ("ABORTED", Some(stopped), error, cause);
            e.done.notify_waiters();
            let date = e.stopped.unwrap_or(stopped);
            store.executions.ended(arn);
            return Ok(json!({"stopDate": date}));
        }
        Ok(json!({"stopDate": e.stopped.unwrap_or(stopped)}))
    }

    pub(super) fn describe_execution(self: &Arc<Self>, body: &Value) -> ApiResult {
        let store = self.store.lock().unwrap();
        Ok(describe(execution(&store, str_arg(body, "executionArn")?)?))
    }

    pub(super) fn list_executions(self: &Arc<Self>, body: &Value) -> ApiResult {
        if let Some(run) = body["mapRunArn"].as_str() {
            return self.list_children(run, body);
        }
        let store = self.store.lock().unwrap();
        let arn = str_arg(body, "stateMachineArn")?;
        // a version or alias ARN lists the executions started on it
        let (m, target) = resolve(&store, arn)?;
        let on = |e: &Exec| match &target {
            Target::Machine => e.machine_arn == m.arn,
            Target::Version(_) => e.version_arn.as_deref() == Some(arn),
            Target::Alias(_) => e.alias_arn.as_deref() == Some(arn),
        };
        let filter = body["statusFilter"].as_str();
        let redriven = match body["redriveFilter"].as_str() {
            None => None,
            Some("REDRIVEN") => Some(true),
            Some("NOT_REDRIVEN") => Some(false),
            Some(other) => {
                return Err(bad(
                    "ValidationException",
                    format!(
                        "1 validation error detected: Value '{other}' at 'redriveFilter' failed to satisfy constraint: Member must satisfy enum value set: [REDRIVEN, NOT_REDRIVEN]"
                    ),
                ));
            }
        };
        let all: Vec<&Exec> = store
            .executions
            .iter()
            .rev()
            .filter(|e| on(e) && filter.is_none_or(|f| f == e.status))
            .filter(|e| redriven.is_none_or(|r| r == (e.redrive.count > 0)))
            .collect();
        let (range, next) = page(&all, body, 100)?;
        let items: Vec<Value> = all[range]
                .iter()
                .map(|e| {
                    json!({"executionArn": e.arn, "stateMachineArn": e.machine_arn, "name": e.name, "status": e.status,
                           "startDate": e.started, "stopDate": e.stopped,
                           "stateMachineVersionArn": e.version_arn, "stateMachineAliasArn": e.alias_arn,
                           "redriveCount": (e.kind == "STANDARD").then_some(e.redrive.count), "redriveDate": e.redrive.date})
                })
                .collect();
        Ok(json!({"executions": items, "nextToken": next}))
    }

    pub(super) fn get_execution_history(self: &Arc<Self>, body: &Value) -> ApiResult {
        let store = self.store.lock().unwrap();
        let e = execution(&store, str_arg(body, "executionArn")?)?;
        let mut events: Vec<Value> = e
            .journal
            .events()
            .iter()
            .map(|ev| history::event(ev, e.started, &self.region))
            .collect();
        if body["reverseOrder"].as_bool() == Some(true) {
            events.reverse();
        }
        if body["includeExecutionData"].as_bool() == Some(false) {
            for ev in &mut events {
                strip_data(ev);
            }
        }
        let (range, next) = page(&events, body, 100)?;
        Ok(json!({"events": events[range].to_vec(), "nextToken": next}))
    }

    pub(super) fn send_task_success(self: &Arc<Self>, body: &Value) -> ApiResult {
        let token = well_formed(str_arg(body, "taskToken")?)?;
        let output: Value = serde_json::from_str(str_arg(body, "output")?)
            .map_err(|e| bad("InvalidOutput", format!("the output is not JSON: {e}")))?;
        self.answer(token, Callback::Success(output))
    }

    pub(super) fn send_task_failure(self: &Arc<Self>, body: &Value) -> ApiResult {
        let token = well_formed(str_arg(body, "taskToken")?)?;
        let answer = Callback::Failure {
            error: body["error"].as_str().unwrap_or_default().to_string(),
            cause: body["cause"].as_str().unwrap_or_default().to_string(),
        };
        self.answer(token, answer)
    }

    pub(super) fn answer(
        &self,
        token: &str,
        answer: Callback,
    ) -> std::result::Result<Value, ApiError> {
        if self.callbacks.send(token, answer) {
            Ok(json!({}))
        } else {
            Err(bad(
                "TaskDoesNotExist",
                "Task does not exist anymore (already answered, timed out, or its execution ended)",
            ))
        }
    }

    pub(super) fn start_execution(
        self: &Arc<Self>,
        body: &Value,
        sync: bool,
    ) -> std::result::Result<Value, ApiError> {
        let requested = str_arg(body, "stateMachineArn")?;
        // Step Functions Local's convention: `<machine ARN>#<test case>` runs with that case's mocks.
        let (arn, case) = match requested.split_once('#') {
            Some((a, c)) => (a, Some(c)),
            None => (requested, None),
        };
        let (input_text, input, name) = execution_args(body)?;
        let mut store = self.store.lock().unwrap();
        // a version or alias ARN runs that version, or one the alias picks by weight
        let (m, target) = resolve(&store, arn)?;
        let (parsed, role_arn, version_arn, alias_arn) = m.pick(&target);
        if sync && m.kind != "EXPRESS" {
            return Err(bad(
                "StateMachineTypeNotSupported",
                "StartSyncExecution is for EXPRESS state machines",
            ));
        }
        let mocks = case.map(|c| self.mocks(c, &m.name)).transpose()?;
        let exec_arn = format!(
            "arn:aws:states:{}:{}:execution:{}:{name}",
            self.region, self.account, m.name
        );
        if let Some(e) = store.executions.get(&exec_arn) {
            // StartExecution is idempotent for the same name and input while it runs
            return match e.input == input_text && e.status == "RUNNING" {
                true => Ok(json!({"executionArn": e.arn, "startDate": e.started})),
                false => Err(bad(
                    "ExecutionAlreadyExists",
                    format!("Execution Already Exists: '{exec_arn}'"),
                )),
            };
        }
        let opts = self.options(&name, &exec_arn, m, role_arn.clone());
        let cancel = opts.cancel.clone();
        let journal = Arc::new(Journal::default());
        let exec = Exec::running(
            &exec_arn,
            (&m.arn, &m.kind),
            (parsed.clone(), role_arn),
            (version_arn, alias_arn),
            (name, input_text),
            journal.clone(),
            cancel,
        );
        let started = exec.started;
        store.executions.push(exec);
        let abort = self.spawn(parsed, input, opts, mocks, journal, None);
        if let Some(e) = store.executions.get_mut(&exec_arn) {
            e.abort = Some(abort);
        }
        let out = json!({"executionArn": exec_arn, "startDate": started});
        drop(store);
        Ok(out)
    }

    /// Runs the execution on the engine, in the background; the handle that stops it.
    pub(super) fn spawn(
        self: &Arc<Self>,
        def: Arc<Value>,
        input: Value,
        opts: Options,
        mocks: Option<Mocked>,
        journal: Arc<Journal>,
        again: Option<engine::Redrive>,
    ) -> tokio::task::AbortHandle {
        let server = self.clone();
        let integrations = self.integrations.clone();
        // a Distributed Map's iterations are child executions here, listed by their Map Run
        let mut opts = opts;
        opts.children = Some(Arc::new(super::map_runs::ChildExecutions(self.clone())));
        let tasks = LocalTasks {
            integrations,
            mocks,
        };
        tracing::info!("execution {} started", opts.execution_arn);
        let handle = tokio::spawn(async move {
            let result = match again {
                None => engine::execute(&def, input, &opts, &tasks, &journal).await,
                Some(r) => engine::redrive(&def, input, &opts, &tasks, &journal, r).await,
            };
            server.finish(&opts.execution_arn, result);
        });
        handle.abort_handle()
    }

    /// How the engine runs an execution of `m` here: on the real clock (scaled by
    /// --time-scale), its task tokens answered through this endpoint.
    pub(super) fn options(
        &self,
        name: &str,
        exec_arn: &str,
        m: &Machine,
        role_arn: String,
    ) -> Options {
        Options {
            name: name.to_string(),
            execution_arn: exec_arn.to_string(),
            machine_name: m.name.clone(),
            machine_arn: m.arn.clone(),
            role_arn,
            time_scale: self.time_scale,
            callbacks: Some(self.callbacks.clone()),
            cancel: Default::default(),
            clock: Default::default(),
            children: None,
        }
    }

    /// The mocks of a test case of the mock configuration `deploy local` was started with
    /// (Step Functions Local's `<machine ARN>#<test case>`).
    fn mocks(&self, case: &str, machine: &str) -> std::result::Result<Mocked, ApiError> {
        let config = self.mock_config.as_ref().ok_or_else(|| {
            bad("InvalidArn", format!("test case {case:?} asked for, but deploy local was started without --mock-config"))
        })?;
        let cases = scenario::from_sfn_local(config, machine)
            .map_err(|msg| bad("ValidationException", msg))?;
        let (_, mocks) = cases.into_iter().find(|(c, _)| c == case).ok_or_else(|| {
            let msg = format!("the mock configuration has no test case {case:?} for {machine}");
            bad("ValidationException", msg)
        })?;
        Ok(Mocked::new(mocks))
    }

    pub(super) fn finish(&self, arn: &str, result: engine::Execution) {
        let mut store = self.store.lock().unwrap();
        let Some(e) = store.executions.get_mut(arn) else {
            return;
        };
        if e.status != "RUNNING" {
            return;
        }
        e.status = result.status.name();
        e.stopped = Some(now());
        e.output = (result.status == engine::Status::Succeeded).then(|| result.output.to_string());
        (e.error, e.cause) = (result.error, result.cause);
        e.abort = None;
        e.done.notify_waiters();
        tracing::info!("execution {arn} {} in {:.3} s", e.status, result.seconds);
        store.executions.ended(arn);
    }

    /// StartSyncExecution: runs an EXPRESS machine and answers when it ends.
    pub(super) async fn start_sync(
        self: &Arc<Self>,
        body: &Value,
    ) -> std::result::Result<Value, ApiError> {
        let started = self.start_execution(body, true)?;
        let arn = started["executionArn"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        loop {
            let done = {
                let store = self.store.lock().unwrap();
                let e = execution(&store, &arn)?;
                if e.status != "RUNNING" {
                    let mut d = describe(e);
                    d["stateMachineArn"] = json!(e.machine_arn);
                    d["billingDetails"] = billing(e);
                    return Ok(d);
                }
                e.done.clone()
            };
            // notify_waiters wakes only current waiters: re-check at least every 100 ms
            let _ =
                tokio::time::timeout(std::time::Duration::from_millis(100), done.notified()).await;
        }
    }
}

/// A StartExecution's input (as text, and parsed) and the execution's name (given, or new).
fn execution_args(body: &Value) -> std::result::Result<(String, Value, String), ApiError> {
    let input_text = body["input"].as_str().unwrap_or("{}").to_string();
    if input_text.len() > engine::MAX_PAYLOAD {
        return Err(bad(
            "InvalidExecutionInput",
            format!(
                "the input is {} bytes: an execution's input may hold at most {} (256 KiB)",
                input_text.len(),
                engine::MAX_PAYLOAD
            ),
        ));
    }
    let input: Value = serde_json::from_str(&input_text).map_err(|e| {
        bad(
            "InvalidExecutionInput",
            format!("the input is not JSON: {e}"),
        )
    })?;
    let name = match body["name"].as_str() {
        Some(n) if !valid_name(n) => {
            return Err(bad("InvalidName", format!("Invalid Name: '{n}'")));
        }
        Some(n) => n.to_string(),
        None => uuid(),
    };
    Ok((input_text, input, name))
}

/// A task token is checked for its form before anything else, as AWS checks it: one that no
/// endpoint could have issued is InvalidToken, one that was issued and is done TaskDoesNotExist.
fn well_formed(token: &str) -> std::result::Result<&str, ApiError> {
    match engine::is_token(token) {
        true => Ok(token),
        false => Err(bad("InvalidToken", "Invalid Token: 'Invalid token'")),
    }
}

/// An Express execution's billing, as AWS bills it: its duration rounded up to the next 100 ms
/// (at least 100 ms) and its memory in 64 MB steps (the input and output it held).
fn billing(e: &Exec) -> Value {
    let ms = e.stopped.map_or(0.0, |s| (s - e.started) * 1000.0).max(1.0);
    let ms = ((ms / 100.0).ceil() * 100.0) as u64;
    let bytes = e.input.len() + e.output.as_ref().map_or(0, String::len);
    let mb = ((bytes as f64 / (64.0 * 1024.0 * 1024.0)).ceil().max(1.0) as u64) * 64;
    json!({"billedMemoryUsedInMB": mb, "billedDurationInMilliseconds": ms})
}
