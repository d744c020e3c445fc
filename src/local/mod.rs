//! `deploy local`: the Step Functions API (the JSON 1.0 protocol the SDKs and the AWS CLI speak)
//! on loopback, executing with the local engine. Point `AWS_ENDPOINT_URL_SFN` at it and every
//! other service at the emulator (`AWS_ENDPOINT_URL`, moto): `deploy up`, `deploy run`,
//! `deploy approve`, `deploy history` and the AWS CLI work unchanged. Task integrations call the
//! emulator for real (see [`tasks`]); state machines and executions live in memory.

pub mod history;
pub mod tasks;
mod versions;

use crate::engine::scenario::{self, Mocked};
use crate::engine::{self, Callback, Callbacks, Journal, Options};
use crate::error::{Error, Result};
use crate::options::{Global, Run};
use clap::Args;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tasks::{Integrations, LocalTasks};

struct Machine {
    arn: String,
    name: String,
    definition: String,
    parsed: Arc<Value>,
    role_arn: String,
    kind: String,
    created: f64,
    tags: BTreeMap<String, String>,
    logging: Value,
    /// Published versions, oldest first (numbers are never reused).
    versions: Vec<versions::Version>,
    next_version: u64,
    aliases: BTreeMap<String, versions::Alias>,
}

struct Exec {
    arn: String,
    machine_arn: String,
    /// The version it runs, and the alias it was started through.
    version_arn: Option<String>,
    alias_arn: Option<String>,
    name: String,
    input: String,
    started: f64,
    stopped: Option<f64>,
    status: &'static str,
    output: Option<String>,
    error: Option<String>,
    cause: Option<String>,
    journal: Arc<Journal>,
    abort: Option<tokio::task::AbortHandle>,
    /// Stops evaluations in progress (an abort only takes effect at the next await).
    cancel: jsonata_core::evaluator::CancelToken,
    done: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct Store {
    machines: BTreeMap<String, Machine>,
    executions: Executions,
}

/// Executions in the order they started, found by ARN. Finished ones beyond `keep` are
/// forgotten, the oldest first (AWS forgets them after 90 days), so that a long-running
/// endpoint's memory stays bounded; running ones are always kept.
#[derive(Default)]
struct Executions {
    by_seq: BTreeMap<u64, Exec>,
    seq_of: HashMap<String, u64>,
    next: u64,
    /// Finished executions, in the order they finished.
    finished: VecDeque<u64>,
    keep: usize,
}

impl Executions {
    fn get(&self, arn: &str) -> Option<&Exec> {
        self.seq_of.get(arn).and_then(|s| self.by_seq.get(s))
    }

    fn get_mut(&mut self, arn: &str) -> Option<&mut Exec> {
        self.seq_of.get(arn).and_then(|s| self.by_seq.get_mut(s))
    }

    fn push(&mut self, e: Exec) {
        let seq = self.next;
        self.next += 1;
        self.seq_of.insert(e.arn.clone(), seq);
        self.by_seq.insert(seq, e);
    }

    /// Oldest first.
    fn iter(&self) -> impl DoubleEndedIterator<Item = &Exec> {
        self.by_seq.values()
    }

    /// An execution has ended: it counts among the finished, and the oldest finished beyond
    /// `keep` are forgotten.
    fn ended(&mut self, arn: &str) {
        if let Some(seq) = self.seq_of.get(arn) {
            self.finished.push_back(*seq);
        }
        while self.finished.len() > self.keep {
            let Some(old) = self.finished.pop_front() else {
                break;
            };
            if let Some(e) = self.by_seq.remove(&old) {
                self.seq_of.remove(&e.arn);
            }
        }
    }
}

struct Server {
    store: Mutex<Store>,
    integrations: Arc<Integrations>,
    callbacks: Arc<Callbacks>,
    mock_config: Option<Value>,
    time_scale: f64,
    account: String,
    region: String,
}

/// An API error: HTTP status, the error code the SDK matches on, a message.
#[derive(Debug)]
struct ApiError(u16, &'static str, String);

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError(400, code, message.into())
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn str_arg<'a>(body: &'a Value, k: &str) -> std::result::Result<&'a str, ApiError> {
    body[k].as_str().ok_or_else(|| {
        bad(
            "ValidationException",
            format!("1 validation error detected: {k} must not be null"),
        )
    })
}

fn valid_name(name: &str) -> bool {
    (1..=80).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The definition is JSON and passes `deploy validate` (moto takes anything; AWS does not).
fn check_definition(text: &str) -> std::result::Result<Value, ApiError> {
    let def: Value = serde_json::from_str(text).map_err(|e| {
        bad(
            "InvalidDefinition",
            format!("Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: {e}'"),
        )
    })?;
    let errors: Vec<String> = crate::validate::check(&def, "definition", None)
        .into_iter()
        .filter(|f| f.severity == crate::validate::Severity::Error)
        .map(|f| {
            format!(
                "{} at {}",
                f.message,
                if f.pointer.is_empty() {
                    "/"
                } else {
                    &f.pointer
                }
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(bad(
            "InvalidDefinition",
            format!("Invalid State Machine Definition: '{}'", errors.join("; ")),
        ));
    }
    Ok(def)
}

fn tags_of(body: &Value) -> BTreeMap<String, String> {
    body["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["key"].as_str().unwrap_or_default().to_string(),
                t["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn page<T>(
    items: &[T],
    body: &Value,
    default: usize,
) -> std::result::Result<(std::ops::Range<usize>, Option<String>), ApiError> {
    let from = match body["nextToken"].as_str() {
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| bad("InvalidToken", format!("invalid nextToken {t:?}")))?,
        None => 0,
    }
    .min(items.len());
    let max = body["maxResults"]
        .as_u64()
        .filter(|&m| m > 0)
        .map(|m| m as usize)
        .unwrap_or(default);
    let to = (from + max).min(items.len());
    Ok((from..to, (to < items.len()).then(|| to.to_string())))
}

type ApiResult = std::result::Result<Value, ApiError>;

/// The Step Functions operations `deploy local` answers, by name.
const OPERATIONS: &[(&str, fn(&Arc<Server>, &Value) -> ApiResult)] = &[
    ("CreateStateMachine", |s, body| s.create_state_machine(body)),
    ("DescribeStateMachine", Server::describe_state_machine),
    ("UpdateStateMachine", Server::update_state_machine),
    ("DeleteStateMachine", Server::delete_state_machine),
    ("ListStateMachines", Server::list_state_machines),
    ("TagResource", Server::tag_resource),
    ("UntagResource", Server::untag_resource),
    ("ListTagsForResource", Server::list_tags_for_resource),
    ("StartExecution", |s, body| s.start_execution(body, false)),
    ("StopExecution", Server::stop_execution),
    ("DescribeExecution", Server::describe_execution),
    ("ListExecutions", Server::list_executions),
    ("GetExecutionHistory", Server::get_execution_history),
    ("SendTaskSuccess", Server::send_task_success),
    ("SendTaskFailure", Server::send_task_failure),
    ("SendTaskHeartbeat", |s, body| {
        s.answer(str_arg(body, "taskToken")?, Callback::Heartbeat)
    }),
    (
        "PublishStateMachineVersion",
        Server::publish_state_machine_version,
    ),
    (
        "ListStateMachineVersions",
        Server::list_state_machine_versions,
    ),
    (
        "DeleteStateMachineVersion",
        Server::delete_state_machine_version,
    ),
    (
        "CreateStateMachineAlias",
        Server::create_state_machine_alias,
    ),
    (
        "DescribeStateMachineAlias",
        Server::describe_state_machine_alias,
    ),
    (
        "UpdateStateMachineAlias",
        Server::update_state_machine_alias,
    ),
    (
        "DeleteStateMachineAlias",
        Server::delete_state_machine_alias,
    ),
    (
        "ListStateMachineAliases",
        Server::list_state_machine_aliases,
    ),
    (
        "ValidateStateMachineDefinition",
        Server::validate_state_machine_definition,
    ),
];

impl Server {
    fn machine_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:stateMachine:{name}",
            self.region, self.account
        )
    }

    fn handle(self: &Arc<Self>, op: &str, body: &Value) -> ApiResult {
        match OPERATIONS.iter().find(|(name, _)| *name == op) {
            Some((_, operation)) => operation(self, body),
            None => Err(bad(
                "UnknownOperationException",
                format!("deploy local does not implement {op}"),
            )),
        }
    }

    fn describe_state_machine(self: &Arc<Self>, body: &Value) -> ApiResult {
        let store = self.store.lock().unwrap();
        let arn = str_arg(body, "stateMachineArn")?;
        let (m, target) = versions::resolve(&store, arn)?;
        let mut d = json!({"stateMachineArn": m.arn, "name": m.name, "status": "ACTIVE", "definition": m.definition, "roleArn": m.role_arn,
                           "type": m.kind, "creationDate": m.created, "loggingConfiguration": m.logging});
        // a version describes as itself: its own definition and role
        if let versions::Target::Version(i) = target {
            let v = &m.versions[i];
            d["stateMachineArn"] = json!(v.arn);
            d["definition"] = json!(v.definition);
            d["roleArn"] = json!(v.role_arn);
            d["creationDate"] = json!(v.created);
            d["description"] = json!(v.description);
        }
        Ok(d)
    }

    fn update_state_machine(self: &Arc<Self>, body: &Value) -> ApiResult {
        let def = body["definition"]
            .as_str()
            .map(check_definition)
            .transpose()?;
        let mut store = self.store.lock().unwrap();
        let m = machine_mut(&mut store, str_arg(body, "stateMachineArn")?)?;
        if let (Some(text), Some(parsed)) = (body["definition"].as_str(), def) {
            m.definition = text.to_string();
            m.parsed = Arc::new(parsed);
        }
        if let Some(r) = body["roleArn"].as_str() {
            m.role_arn = r.to_string();
        }
        if body.get("loggingConfiguration").is_some() {
            m.logging = body["loggingConfiguration"].clone();
        }
        let mut out = json!({"updateDate": now()});
        if body["publish"] == true {
            out["stateMachineVersionArn"] =
                json!(m.publish(body["versionDescription"].as_str().unwrap_or_default()));
        }
        Ok(out)
    }

    fn delete_state_machine(self: &Arc<Self>, body: &Value) -> ApiResult {
        let arn = str_arg(body, "stateMachineArn")?;
        self.store.lock().unwrap().machines.remove(arn);
        Ok(json!({}))
    }

    fn list_state_machines(self: &Arc<Self>, body: &Value) -> ApiResult {
        let store = self.store.lock().unwrap();
        let all: Vec<&Machine> = store.machines.values().collect();
        let (range, next) = page(&all, body, 100)?;
        let items: Vec<Value> = all[range]
                .iter()
                .map(|m| json!({"stateMachineArn": m.arn, "name": m.name, "type": m.kind, "creationDate": m.created}))
                .collect();
        Ok(json!({"stateMachines": items, "nextToken": next}))
    }

    fn tag_resource(self: &Arc<Self>, body: &Value) -> ApiResult {
        let mut store = self.store.lock().unwrap();
        machine_mut(&mut store, str_arg(body, "resourceArn")?)?
            .tags
            .extend(tags_of(body));
        Ok(json!({}))
    }

    fn untag_resource(self: &Arc<Self>, body: &Value) -> ApiResult {
        let mut store = self.store.lock().unwrap();
        let m = machine_mut(&mut store, str_arg(body, "resourceArn")?)?;
        for k in body["tagKeys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k.as_str())
        {
            m.tags.remove(k);
        }
        Ok(json!({}))
    }

    fn list_tags_for_resource(self: &Arc<Self>, body: &Value) -> ApiResult {
        let store = self.store.lock().unwrap();
        let m = machine(&store, str_arg(body, "resourceArn")?)?;
        Ok(
            json!({"tags": m.tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()}),
        )
    }

    fn stop_execution(self: &Arc<Self>, body: &Value) -> ApiResult {
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

    fn describe_execution(self: &Arc<Self>, body: &Value) -> ApiResult {
        let store = self.store.lock().unwrap();
        Ok(describe(execution(&store, str_arg(body, "executionArn")?)?))
    }

    fn list_executions(self: &Arc<Self>, body: &Value) -> ApiResult {
        let store = self.store.lock().unwrap();
        let arn = str_arg(body, "stateMachineArn")?;
        // a version or alias ARN lists the executions started on it
        let (m, target) = versions::resolve(&store, arn)?;
        let on = |e: &Exec| match &target {
            versions::Target::Machine => e.machine_arn == m.arn,
            versions::Target::Version(_) => e.version_arn.as_deref() == Some(arn),
            versions::Target::Alias(_) => e.alias_arn.as_deref() == Some(arn),
        };
        let filter = body["statusFilter"].as_str();
        let all: Vec<&Exec> = store
            .executions
            .iter()
            .rev()
            .filter(|e| on(e) && filter.is_none_or(|f| f == e.status))
            .collect();
        let (range, next) = page(&all, body, 100)?;
        let items: Vec<Value> = all[range]
                .iter()
                .map(|e| {
                    json!({"executionArn": e.arn, "stateMachineArn": e.machine_arn, "name": e.name, "status": e.status,
                           "startDate": e.started, "stopDate": e.stopped,
                           "stateMachineVersionArn": e.version_arn, "stateMachineAliasArn": e.alias_arn})
                })
                .collect();
        Ok(json!({"executions": items, "nextToken": next}))
    }

    fn get_execution_history(self: &Arc<Self>, body: &Value) -> ApiResult {
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

    fn send_task_success(self: &Arc<Self>, body: &Value) -> ApiResult {
        let token = str_arg(body, "taskToken")?;
        let output: Value = serde_json::from_str(str_arg(body, "output")?)
            .map_err(|e| bad("InvalidOutput", format!("the output is not JSON: {e}")))?;
        self.answer(token, Callback::Success(output))
    }

    fn send_task_failure(self: &Arc<Self>, body: &Value) -> ApiResult {
        let token = str_arg(body, "taskToken")?;
        let answer = Callback::Failure {
            error: body["error"].as_str().unwrap_or_default().to_string(),
            cause: body["cause"].as_str().unwrap_or_default().to_string(),
        };
        self.answer(token, answer)
    }

    fn validate_state_machine_definition(self: &Arc<Self>, body: &Value) -> ApiResult {
        let text = str_arg(body, "definition")?;
        let diagnostics: Vec<Value> = match serde_json::from_str::<Value>(text) {
                Err(e) => vec![json!({"severity": "ERROR", "code": "INVALID_JSON_DESCRIPTION", "message": e.to_string()})],
                Ok(def) => crate::validate::check(&def, "definition", None)
                    .into_iter()
                    .map(|f| {
                        json!({"severity": format!("{:?}", f.severity).to_uppercase(), "code": "SCHEMA_VALIDATION_FAILED",
                               "message": f.message, "location": f.pointer})
                    })
                    .collect(),
            };
        let ok = !diagnostics.iter().any(|d| d["severity"] == "ERROR");
        Ok(
            json!({"result": if ok { "OK" } else { "FAIL" }, "diagnostics": diagnostics, "truncated": false}),
        )
    }

    fn answer(&self, token: &str, answer: Callback) -> std::result::Result<Value, ApiError> {
        if self.callbacks.send(token, answer) {
            Ok(json!({}))
        } else {
            Err(bad(
                "TaskDoesNotExist",
                "Task does not exist anymore (already answered, timed out, or its execution ended)",
            ))
        }
    }

    fn create_state_machine(&self, body: &Value) -> std::result::Result<Value, ApiError> {
        let name = str_arg(body, "name")?;
        if !valid_name(name) {
            return Err(bad("InvalidName", format!("Invalid Name: '{name}'")));
        }
        let role_arn = str_arg(body, "roleArn")?;
        if !role_arn.starts_with("arn:") {
            return Err(bad(
                "InvalidArn",
                format!("Invalid Arn: 'Resource type not valid in this context: {role_arn}'"),
            ));
        }
        let text = str_arg(body, "definition")?;
        let parsed = check_definition(text)?;
        let kind = body["type"].as_str().unwrap_or("STANDARD");
        if kind != "STANDARD" && kind != "EXPRESS" {
            return Err(bad(
                "ValidationException",
                format!("type must be STANDARD or EXPRESS, not {kind}"),
            ));
        }
        let arn = self.machine_arn(name);
        let mut store = self.store.lock().unwrap();
        if let Some(m) = store.machines.get(&arn) {
            // AWS answers an identical create with the existing machine
            if m.definition == text && m.role_arn == role_arn && m.kind == kind {
                return Ok(json!({"stateMachineArn": m.arn, "creationDate": m.created}));
            }
            return Err(bad(
                "StateMachineAlreadyExists",
                format!("State Machine Already Exists: '{arn}'"),
            ));
        }
        let created = now();
        let logging = body
            .get("loggingConfiguration")
            .cloned()
            .unwrap_or_else(|| json!({"level": "OFF", "includeExecutionData": false}));
        let m = Machine {
            arn: arn.clone(),
            name: name.into(),
            definition: text.into(),
            parsed: Arc::new(parsed),
            role_arn: role_arn.into(),
            kind: kind.into(),
            created,
            tags: tags_of(body),
            logging,
            versions: Vec::new(),
            next_version: 0,
            aliases: BTreeMap::new(),
        };
        let mut m = m;
        let mut out = json!({"stateMachineArn": arn, "creationDate": created});
        if body["publish"] == true {
            out["stateMachineVersionArn"] =
                json!(m.publish(body["versionDescription"].as_str().unwrap_or_default()));
        }
        store.machines.insert(arn.clone(), m);
        Ok(out)
    }

    fn start_execution(
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
        let mut store = self.store.lock().unwrap();
        // a version or alias ARN runs that version, or one the alias picks by weight
        let (m, target) = versions::resolve(&store, arn)?;
        let (parsed, role_arn, version_arn, alias_arn) = m.pick(&target);
        if sync && m.kind != "EXPRESS" {
            return Err(bad(
                "StateMachineTypeNotSupported",
                "StartSyncExecution is for EXPRESS state machines",
            ));
        }
        let mocks = match case {
            None => None,
            Some(case) => {
                let config = self.mock_config.as_ref().ok_or_else(|| {
                    bad("InvalidArn", format!("test case {case:?} asked for, but deploy local was started without --mock-config"))
                })?;
                let cases = scenario::from_sfn_local(config, &m.name)
                    .map_err(|msg| bad("ValidationException", msg))?;
                let (_, mocks) = cases.into_iter().find(|(c, _)| c == case).ok_or_else(|| {
                    bad(
                        "ValidationException",
                        format!(
                            "the mock configuration has no test case {case:?} for {}",
                            m.name
                        ),
                    )
                })?;
                Some(Mocked::new(mocks))
            }
        };
        let exec_arn = format!(
            "arn:aws:states:{}:{}:execution:{}:{name}",
            self.region, self.account, m.name
        );
        if let Some(e) = store.executions.get(&exec_arn) {
            if e.input == input_text && e.status == "RUNNING" {
                return Ok(json!({"executionArn": e.arn, "startDate": e.started}));
            }
            return Err(bad(
                "ExecutionAlreadyExists",
                format!("Execution Already Exists: '{exec_arn}'"),
            ));
        }
        let opts = Options {
            name: name.clone(),
            execution_arn: exec_arn.clone(),
            machine_name: m.name.clone(),
            machine_arn: m.arn.clone(),
            role_arn,
            time_scale: self.time_scale,
            callbacks: Some(self.callbacks.clone()),
            cancel: Default::default(),
            clock: Default::default(),
        };
        let cancel = opts.cancel.clone();
        let (def, machine_arn) = (parsed, m.arn.clone());
        let journal = Arc::new(Journal::default());
        let done = Arc::new(tokio::sync::Notify::new());
        let started = now();
        store.executions.push(Exec {
            arn: exec_arn.clone(),
            machine_arn,
            version_arn,
            alias_arn,
            name,
            input: input_text,
            started,
            stopped: None,
            status: "RUNNING",
            output: None,
            error: None,
            cause: None,
            journal: journal.clone(),
            abort: None,
            cancel,
            done: done.clone(),
        });
        let server = self.clone();
        let tasks = LocalTasks {
            integrations: self.integrations.clone(),
            mocks,
        };
        let key = exec_arn.clone();
        tracing::info!("execution {key} started");
        let handle = tokio::spawn(async move {
            let result = engine::execute(&def, input, &opts, &tasks, &journal).await;
            server.finish(&key, result);
        });
        if let Some(e) = store.executions.get_mut(&exec_arn) {
            e.abort = Some(handle.abort_handle());
        }
        let out = json!({"executionArn": exec_arn, "startDate": started});
        drop(store);
        Ok(out)
    }

    fn finish(&self, arn: &str, result: engine::Execution) {
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
    async fn start_sync(self: &Arc<Self>, body: &Value) -> std::result::Result<Value, ApiError> {
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

fn describe(e: &Exec) -> Value {
    let mut d = json!({"executionArn": e.arn, "stateMachineArn": e.machine_arn, "name": e.name, "status": e.status,
                       "startDate": e.started, "input": e.input, "inputDetails": {"included": true}});
    let m = d.as_object_mut().unwrap();
    if let Some(s) = e.stopped {
        m.insert("stopDate".into(), json!(s));
    }
    if let Some(v) = &e.version_arn {
        m.insert("stateMachineVersionArn".into(), json!(v));
    }
    if let Some(a) = &e.alias_arn {
        m.insert("stateMachineAliasArn".into(), json!(a));
    }
    if let Some(o) = &e.output {
        m.insert("output".into(), json!(o));
        m.insert("outputDetails".into(), json!({"included": true}));
    }
    // AWS leaves out an error or cause the execution's failure did not name (a Fail state
    // without Error or Cause)
    if let Some(x) = e.error.as_ref().filter(|x| !x.is_empty()) {
        m.insert("error".into(), json!(x));
    }
    if let Some(x) = e.cause.as_ref().filter(|x| !x.is_empty()) {
        m.insert("cause".into(), json!(x));
    }
    d
}

/// includeExecutionData=false: inputs, outputs and parameters are left out.
fn strip_data(ev: &mut Value) {
    if let Some(m) = ev.as_object_mut() {
        for (k, v) in m.iter_mut() {
            if k.ends_with("EventDetails") {
                if let Some(d) = v.as_object_mut() {
                    d.retain(|k, _| !matches!(k.as_str(), "input" | "output" | "parameters"));
                }
            }
        }
    }
}

fn machine<'a>(store: &'a Store, arn: &str) -> std::result::Result<&'a Machine, ApiError> {
    if !arn.starts_with("arn:") {
        return Err(bad("InvalidArn", format!("Invalid Arn: '{arn}'")));
    }
    store.machines.get(arn).ok_or_else(|| {
        bad(
            "StateMachineDoesNotExist",
            format!("State Machine Does Not Exist: '{arn}'"),
        )
    })
}

fn machine_mut<'a>(
    store: &'a mut Store,
    arn: &str,
) -> std::result::Result<&'a mut Machine, ApiError> {
    machine(store, arn)?;
    Ok(store.machines.get_mut(arn).unwrap())
}

fn execution<'a>(store: &'a Store, arn: &str) -> std::result::Result<&'a Exec, ApiError> {
    if !arn.starts_with("arn:") {
        return Err(bad("InvalidArn", format!("Invalid Arn: '{arn}'")));
    }
    store.executions.get(arn).ok_or_else(|| {
        bad(
            "ExecutionDoesNotExist",
            format!("Execution Does Not Exist: '{arn}'"),
        )
    })
}

fn execution_mut<'a>(
    store: &'a mut Store,
    arn: &str,
) -> std::result::Result<&'a mut Exec, ApiError> {
    execution(store, arn)?;
    Ok(store.executions.get_mut(arn).unwrap())
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn respond(status: u16, body: Value) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-requestid", uuid())
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .expect("a response")
}

async fn serve_one(
    server: Arc<Server>,
    req: hyper::Request<hyper::body::Incoming>,
) -> std::result::Result<
    hyper::Response<http_body_util::Full<bytes::Bytes>>,
    std::convert::Infallible,
> {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(respond(
                400,
                json!({"__type": "SerializationException", "message": e.to_string()}),
            ));
        }
    };
    let Some(op) = target
        .as_deref()
        .and_then(|t| t.strip_prefix("AWSStepFunctions."))
    else {
        // anything else (a browser, a health check): say what this is
        return Ok(respond(
            200,
            json!({"service": "deploy local: AWS Step Functions (JSON 1.0 protocol, X-Amz-Target: AWSStepFunctions.<Operation>)"}),
        ));
    };
    let body: Value = if bytes.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    if !body.is_object() {
        return Ok(respond(
            400,
            json!({"__type": "SerializationException", "message": "the request body is not a JSON object"}),
        ));
    }
    let result = if op == "StartSyncExecution" {
        server.start_sync(&body).await
    } else {
        server.handle(op, &body)
    };
    let (status, out) = match result {
        Ok(mut v) => {
            // AWS leaves out members that have no value
            if let Some(m) = v.as_object_mut() {
                m.retain(|_, v| !v.is_null());
            }
            (200, v)
        }
        Err(ApiError(status, code, message)) => {
            tracing::debug!("{op}: {code}: {message}");
            (
                status,
                json!({"__type": format!("com.amazonaws.stepfunctions#{code}"), "message": message}),
            )
        }
    };
    tracing::debug!("{op} -> {status}");
    Ok(respond(status, out))
}

/// Runs the endpoint until Ctrl-C.
pub async fn serve(g: &crate::options::Global, args: LocalArgs) -> Result<()> {
    let mock_config = match &args.mock_config {
        None => None,
        Some(f) => {
            let text = std::fs::read_to_string(f).map_err(|e| {
                Error::user(format!("cannot read: {e}")).at(f.display().to_string())
            })?;
            let v: Value = serde_json::from_str(&text).map_err(|e| {
                Error::user(format!("not JSON: {e}")).at(format!("{}:{}", f.display(), e.line()))
            })?;
            if !v["StateMachines"].is_object() || !v["MockedResponses"].is_object() {
                return Err(Error::user(
                    "a mock configuration has StateMachines and MockedResponses",
                )
                .at(f.display().to_string()));
            }
            Some(v)
        }
    };
    if !(args.time_scale > 0.0) {
        return Err(Error::user(
            "--time-scale must be above 0 (0.01 makes every Wait 100 times shorter)",
        ));
    }
    let ctx = crate::aws::connect(&g.aws).await?;
    let (account, region) = (ctx.account_id.clone(), ctx.region.clone());
    let others = ctx.endpoint.clone().unwrap_or_else(|| "AWS".into());
    let integrations = Integrations::new(ctx, args.http_endpoint.clone()).map_err(|e| {
        Error::new(
            crate::error::Class::Internal,
            format!("cannot load TLS roots for http:invoke: {e}"),
        )
    })?;
    let server = Arc::new(Server {
        store: Mutex::new(Store {
            executions: Executions {
                keep: args.keep_executions,
                ..Default::default()
            },
            ..Default::default()
        }),
        integrations: Arc::new(integrations),
        callbacks: Arc::new(Callbacks::default()),
        mock_config,
        time_scale: args.time_scale,
        account,
        region,
    });
    let loopback = args.host == "localhost"
        || args
            .host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        eprintln!(
            "warning: deploy local listens on {}: anyone who reaches that address can start executions, which act on the \
             emulator with your credentials, and the endpoint asks for no authentication; keep it on 127.0.0.1 unless \
             that is what you want",
            args.host
        );
    }
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .map_err(|e| {
            Error::user(format!("cannot listen on {}:{}: {e}", args.host, args.port))
                .help("choose another --port (0 picks a free one)")
        })?;
    let addr = listener.local_addr()?;
    // Whoever started us may stop reading: a closed stdout must not stop the endpoint.
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "deploy local: Step Functions on http://{addr} (task integrations call {others})"
    );
    let _ = writeln!(out, "export AWS_ENDPOINT_URL_SFN=http://{addr}");
    let _ = out.flush();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => { tracing::warn!("accept: {e}"); continue; }
            },
            _ = tokio::signal::ctrl_c() => {
                let running = server.store.lock().unwrap().executions.iter().filter(|e| e.status == "RUNNING").count();
                eprintln!("deploy local: stopped ({running} executions were still running; state machines and executions are kept in memory only)");
                return Ok(());
            }
        };
        let server = server.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| serve_one(server.clone(), req));
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("connection: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_continue_where_they_stopped() {
        let items: Vec<u32> = (0..5).collect();
        let (r, next) = page(&items, &json!({"maxResults": 2}), 100).unwrap();
        assert_eq!((r, next.as_deref()), (0..2, Some("2")));
        let (r, next) = page(&items, &json!({"maxResults": 2, "nextToken": "4"}), 100).unwrap();
        assert_eq!((r, next), (4..5, None));
        assert!(page(&items, &json!({"nextToken": "x"}), 100).is_err());
    }

    #[test]
    fn definitions_are_checked_as_aws_checks_them() {
        assert!(
            check_definition(r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}"#)
                .is_ok()
        );
        let ApiError(_, code, message) =
            check_definition(r#"{"StartAt": "B", "States": {"A": {"Type": "Pass", "End": true}}}"#)
                .unwrap_err();
        assert_eq!(code, "InvalidDefinition");
        assert!(message.contains("B"), "{message}");
        assert_eq!(check_definition("{").unwrap_err().1, "InvalidDefinition");
    }
}

/// `deploy local`'s command line.
#[derive(Debug, Clone, Args)]
pub struct LocalArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0: a free one; the first line printed says which)
    #[arg(long, default_value_t = 8083)]
    pub port: u16,
    /// Send every http:invoke here instead (scheme and host replaced, path kept), e.g. a local stand-in API
    #[arg(long, value_name = "URL")]
    pub http_endpoint: Option<String>,
    /// A Step Functions Local mock configuration; start an execution on `<machine ARN>#<test case>` to use a case's mocks
    #[arg(long, value_name = "FILE")]
    pub mock_config: Option<std::path::PathBuf>,
    /// Multiply every Wait, retry interval and timeout by this (0.01: a 10 s Wait takes 0.1 s)
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// How many finished executions to keep (the oldest are forgotten first; running ones
    /// are always kept), so that memory stays bounded
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub keep_executions: usize,
}

#[async_trait::async_trait(?Send)]
impl Run for LocalArgs {
    async fn run(&self, g: &Global) -> Result<()> {
        serve(g, self.clone()).await
    }
}
