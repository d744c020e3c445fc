//! What `deploy local` holds: state machines (with their versions and aliases) and executions
//! in the order they started, finished ones beyond a bound forgotten, oldest first.

use super::api::{ApiError, bad, now};
use crate::engine::Journal;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

pub(super) struct Machine {
    pub(super) arn: String,
    pub(super) name: String,
    pub(super) definition: String,
    pub(super) parsed: Arc<Value>,
    pub(super) role_arn: String,
    pub(super) kind: String,
    pub(super) created: f64,
    pub(super) tags: BTreeMap<String, String>,
    pub(super) logging: Value,
    /// Its encryptionConfiguration (AWS's own key unless a KMS key is given).
    pub(super) encryption: Value,
    /// Published versions, oldest first (numbers are never reused).
    pub(super) versions: Vec<Version>,
    pub(super) next_version: u64,
    pub(super) aliases: BTreeMap<String, Alias>,
}

pub(super) struct Exec {
    pub(super) arn: String,
    pub(super) machine_arn: String,
    /// The version it runs, and the alias it was started through.
    pub(super) version_arn: Option<String>,
    pub(super) alias_arn: Option<String>,
    pub(super) name: String,
    pub(super) input: String,
    pub(super) started: f64,
    pub(super) stopped: Option<f64>,
    pub(super) status: &'static str,
    pub(super) output: Option<String>,
    pub(super) error: Option<String>,
    pub(super) cause: Option<String>,
    pub(super) journal: Arc<Journal>,
    /// The definition and role it runs (a redrive runs the same, whatever came after).
    pub(super) definition: Arc<Value>,
    pub(super) role_arn: String,
    /// STANDARD or EXPRESS.
    pub(super) kind: String,
    pub(super) redrive: Redriven,
    /// The Map Run it is a child execution of.
    pub(super) map_run: Option<String>,
    pub(super) abort: Option<tokio::task::AbortHandle>,
    /// Stops evaluations in progress (an abort only takes effect at the next await).
    pub(super) cancel: jsonata_core::evaluator::CancelToken,
    pub(super) done: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
pub(super) struct Store {
    pub(super) machines: BTreeMap<String, Machine>,
    pub(super) executions: Executions,
}

/// Executions in the order they started, found by ARN. Finished ones beyond `keep` are
/// forgotten, the oldest first (AWS forgets them after 90 days), so that a long-running
/// endpoint's memory stays bounded; running ones are always kept.
#[derive(Default)]
pub(super) struct Executions {
    pub(super) by_seq: BTreeMap<u64, Exec>,
    pub(super) seq_of: HashMap<String, u64>,
    pub(super) next: u64,
    /// Finished executions, in the order they finished.
    pub(super) finished: VecDeque<u64>,
    pub(super) keep: usize,
}

impl Executions {
    pub(super) fn get(&self, arn: &str) -> Option<&Exec> {
        self.seq_of.get(arn).and_then(|s| self.by_seq.get(s))
    }

    pub(super) fn get_mut(&mut self, arn: &str) -> Option<&mut Exec> {
        self.seq_of.get(arn).and_then(|s| self.by_seq.get_mut(s))
    }

    pub(super) fn push(&mut self, e: Exec) {
        let seq = self.next;
        self.next += 1;
        self.seq_of.insert(e.arn.clone(), seq);
        self.by_seq.insert(seq, e);
    }

    /// Oldest first.
    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = &Exec> {
        self.by_seq.values()
    }

    /// A finished execution runs again: it no longer counts among the finished.
    pub(super) fn redriven(&mut self, arn: &str) {
        if let Some(seq) = self.seq_of.get(arn) {
            self.finished.retain(|s| s != seq);
        }
    }

    /// An execution has ended: it counts among the finished, and the oldest finished beyond
    /// `keep` are forgotten.
    pub(super) fn ended(&mut self, arn: &str) {
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

/// An execution's redrives: how many, the last one's time and the client token it came with.
#[derive(Default)]
pub(super) struct Redriven {
    pub(super) count: u64,
    pub(super) date: Option<f64>,
    pub(super) token: Option<String>,
}

/// How long after it ended an execution can be redriven (AWS: 14 days).
pub(super) const REDRIVABLE_FOR: f64 = 14.0 * 86_400.0;

impl Exec {
    /// Why RedriveExecution would refuse it, in AWS's words; None: it can be redriven.
    pub(super) fn not_redrivable(&self) -> Option<String> {
        if self.kind == "EXPRESS" {
            return Some("Execution is of type EXPRESS and cannot be redriven.".into());
        }
        if matches!(self.status, "RUNNING" | "SUCCEEDED") {
            return Some(format!(
                "Execution is {} and cannot be redriven.",
                self.status
            ));
        }
        if self.stopped.is_some_and(|t| now() - t > REDRIVABLE_FOR) {
            return Some("Execution redrivable period exceeded.".into());
        }
        if self.journal.len() + 2 >= crate::engine::MAX_HISTORY {
            return Some("Execution history event limit exceeded.".into());
        }
        if !self.journal.resumable() {
            return Some("Execution did not enter a state and cannot be redriven.".into());
        }
        None
    }

    /// DescribeExecution's redrive members.
    fn redrive_members(&self, m: &mut serde_json::Map<String, Value>) {
        if self.kind == "EXPRESS" {
            return;
        }
        m.insert("redriveCount".into(), json!(self.redrive.count));
        if let Some(d) = self.redrive.date {
            m.insert("redriveDate".into(), json!(d));
        }
        match self.not_redrivable() {
            None => {
                m.insert("redriveStatus".into(), json!("REDRIVABLE"));
            }
            Some(why) => {
                m.insert("redriveStatus".into(), json!("NOT_REDRIVABLE"));
                // DescribeExecution gives it without the full stop (recorded from AWS in
                // sfn-integrations' startExecution.sync cases)
                let why = why.trim_end_matches('.');
                m.insert("redriveStatusReason".into(), json!(why));
            }
        }
    }
}

pub(super) fn describe(e: &Exec) -> Value {
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
    if let Some(r) = &e.map_run {
        m.insert("mapRunArn".into(), json!(r));
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
    e.redrive_members(m);
    d
}

/// includeExecutionData=false: inputs, outputs and parameters are left out.
pub(super) fn strip_data(ev: &mut Value) {
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

pub(super) fn machine<'a>(
    store: &'a Store,
    arn: &str,
) -> std::result::Result<&'a Machine, ApiError> {
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

pub(super) fn machine_mut<'a>(
    store: &'a mut Store,
    arn: &str,
) -> std::result::Result<&'a mut Machine, ApiError> {
    machine(store, arn)?;
    Ok(store.machines.get_mut(arn).unwrap())
}

pub(super) fn execution<'a>(
    store: &'a Store,
    arn: &str,
) -> std::result::Result<&'a Exec, ApiError> {
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

pub(super) fn execution_mut<'a>(
    store: &'a mut Store,
    arn: &str,
) -> std::result::Result<&'a mut Exec, ApiError> {
    execution(store, arn)?;
    Ok(store.executions.get_mut(arn).unwrap())
}

pub struct Version {
    pub arn: String,
    pub definition: String,
    pub parsed: Arc<Value>,
    pub role_arn: String,
    pub created: f64,
    pub description: String,
}

pub struct Alias {
    pub arn: String,
    pub name: String,
    pub description: String,
    /// (version ARN, weight): one or two, weights summing to 100.
    pub routing: Vec<(String, u64)>,
    pub created: f64,
    pub updated: f64,
}

/// What an ARN names: a state machine, one of its versions, or one of its aliases.
pub enum Target {
    Machine,
    Version(usize),
    Alias(String),
}

/// The machine an ARN belongs to (`arn:aws:states:r:a:stateMachine:name[:version|:alias]`),
/// and which part of it the ARN names.
pub fn resolve<'s>(store: &'s Store, arn: &str) -> Result<(&'s Machine, Target), ApiError> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() != 8 {
        return Ok((machine(store, arn)?, Target::Machine));
    }
    let base = parts[..7].join(":");
    let m = machine(store, &base)?;
    let qualifier = parts[7];
    let missing = || bad("ResourceNotFound", format!("Resource Not Found: '{arn}'"));
    if qualifier.chars().all(|c| c.is_ascii_digit()) {
        let i = m
            .versions
            .iter()
            .position(|v| v.arn == arn)
            .ok_or_else(missing)?;
        return Ok((m, Target::Version(i)));
    }
    if m.aliases.contains_key(qualifier) {
        return Ok((m, Target::Alias(qualifier.to_string())));
    }
    Err(missing())
}

impl Machine {
    /// Publishes the current definition and role as a version, unless the newest version is
    /// already them (AWS then answers with that version); returns its ARN.
    pub fn publish(&mut self, description: &str) -> String {
        if let Some(v) = self
            .versions
            .last()
            .filter(|v| v.definition == self.definition && v.role_arn == self.role_arn)
        {
            return v.arn.clone();
        }
        self.next_version += 1;
        let arn = format!("{}:{}", self.arn, self.next_version);
        self.versions.push(Version {
            arn: arn.clone(),
            definition: self.definition.clone(),
            parsed: self.parsed.clone(),
            role_arn: self.role_arn.clone(),
            created: now(),
            description: description.to_string(),
        });
        arn
    }

    /// The definition and role an execution of `target` runs, and the version and alias it
    /// records: an alias picks one of its versions by weight.
    pub fn pick(&self, target: &Target) -> (Arc<Value>, String, Option<String>, Option<String>) {
        let version = |i: usize| {
            let v = &self.versions[i];
            (v.parsed.clone(), v.role_arn.clone(), Some(v.arn.clone()))
        };
        match target {
            Target::Machine => (self.parsed.clone(), self.role_arn.clone(), None, None),
            Target::Version(i) => {
                let (p, r, v) = version(*i);
                (p, r, v, None)
            }
            Target::Alias(name) => {
                let alias = &self.aliases[name];
                let roll = rand::random::<u64>() % 100;
                let mut acc = 0;
                let chosen = alias
                    .routing
                    .iter()
                    .find(|(_, w)| {
                        acc += w;
                        roll < acc
                    })
                    .or(alias.routing.last())
                    .map(|(arn, _)| arn.clone())
                    .unwrap_or_default();
                let i = self.versions.iter().position(|v| v.arn == chosen);
                match i {
                    Some(i) => {
                        let (p, r, v) = version(i);
                        (p, r, v, Some(alias.arn.clone()))
                    }
                    None => (
                        self.parsed.clone(),
                        self.role_arn.clone(),
                        None,
                        Some(alias.arn.clone()),
                    ),
                }
            }
        }
    }
}
impl Exec {
    /// An execution that starts now.
    pub(super) fn running(
        arn: &str,
        (machine_arn, kind): (&str, &str),
        (definition, role_arn): (Arc<Value>, String),
        (version_arn, alias_arn): (Option<String>, Option<String>),
        (name, input): (String, String),
        journal: Arc<Journal>,
        cancel: jsonata_core::evaluator::CancelToken,
    ) -> Exec {
        Exec {
            arn: arn.to_string(),
            machine_arn: machine_arn.to_string(),
            definition,
            role_arn,
            kind: kind.to_string(),
            redrive: Redriven::default(),
            map_run: None,
            version_arn,
            alias_arn,
            name,
            input,
            started: now(),
            stopped: None,
            status: "RUNNING",
            output: None,
            error: None,
            cause: None,
            journal,
            abort: None,
            cancel,
            done: Arc::new(tokio::sync::Notify::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(kind: &str) -> Machine {
        Machine {
            arn: "arn:aws:states:us-east-1:123456789012:stateMachine:m".into(),
            name: "m".into(),
            definition: "{}".into(),
            parsed: Arc::new(json!({})),
            role_arn: String::new(),
            kind: kind.into(),
            created: now(),
            tags: BTreeMap::new(),
            logging: Value::Null,
            encryption: Value::Null,
            versions: Vec::new(),
            next_version: 0,
            aliases: BTreeMap::new(),
        }
    }

    /// An execution that ended with `status` `ago` seconds ago, having entered a state.
    fn ended(kind: &str, status: &'static str, ago: f64) -> Exec {
        let journal = Arc::new(Journal::default());
        let def = json!({"StartAt": "A", "States": {"A": {"Type": "Fail", "Error": "E"}}});
        // the journal a real run writes, with where it would resume
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let opts = crate::engine::Options::local("e");
        rt.block_on(crate::engine::execute(
            &def,
            json!({}),
            &opts,
            &NoTasks,
            &journal,
        ));
        let m = machine(kind);
        let mut e = Exec::running(
            "arn:x",
            (&m.arn, &m.kind),
            (m.parsed.clone(), String::new()),
            (None, None),
            ("e".into(), "{}".into()),
            journal,
            Default::default(),
        );
        e.status = status;
        e.stopped = Some(now() - ago);
        e
    }

    struct NoTasks;
    #[async_trait::async_trait]
    impl crate::engine::Tasks for NoTasks {
        async fn call(&self, _: crate::engine::TaskCall<'_>) -> crate::engine::TaskResult {
            unreachable!("no task here")
        }
    }

    #[test]
    fn an_execution_is_redrivable_as_aws_says() {
        assert_eq!(ended("STANDARD", "FAILED", 60.0).not_redrivable(), None);
        assert_eq!(
            ended("STANDARD", "ABORTED", 13.0 * 86_400.0).not_redrivable(),
            None
        );
        let reason = |kind, status, ago| ended(kind, status, ago).not_redrivable().unwrap();
        assert_eq!(
            reason("STANDARD", "FAILED", 15.0 * 86_400.0),
            "Execution redrivable period exceeded."
        );
        assert_eq!(
            reason("STANDARD", "SUCCEEDED", 1.0),
            "Execution is SUCCEEDED and cannot be redriven."
        );
        assert!(reason("EXPRESS", "FAILED", 1.0).contains("EXPRESS"));
    }
}
