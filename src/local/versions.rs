//! State machine versions and aliases in `deploy local`, as Step Functions has them: a version
//! is an immutable snapshot (definition and role) numbered from 1, `<machine ARN>:<n>`; an alias
//! `<machine ARN>:<name>` routes executions to one or two versions by weight. StartExecution on
//! an alias picks the version per execution by those weights; DescribeExecution and
//! ListExecutions then say which version and alias an execution ran on.

use super::{ApiError, ApiResult, Machine, Server, Store, bad, machine, machine_mut, now, str_arg};
use serde_json::{Value, json};
use std::sync::Arc;

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

/// A routing configuration as AWS checks it: one or two versions of this machine, weights
/// from 0 to 100 summing to 100.
fn routing(m: &Machine, body: &Value) -> Result<Vec<(String, u64)>, ApiError> {
    let list = body["routingConfiguration"]
        .as_array()
        .ok_or_else(|| bad("ValidationException", "routingConfiguration is required"))?;
    if list.is_empty() || list.len() > 2 {
        return Err(bad(
            "ValidationException",
            "routingConfiguration must name one or two versions",
        ));
    }
    let mut out = Vec::new();
    for r in list {
        let arn = r["stateMachineVersionArn"].as_str().unwrap_or_default();
        let weight = r["weight"].as_u64().filter(|w| *w <= 100).ok_or_else(|| {
            bad(
                "ValidationException",
                "each weight is an integer from 0 to 100",
            )
        })?;
        if !m.versions.iter().any(|v| v.arn == arn) {
            return Err(bad(
                "ResourceNotFound",
                format!("Resource Not Found: '{arn}'"),
            ));
        }
        if out.iter().any(|(a, _)| a == arn) {
            return Err(bad("ValidationException", "a version may appear once"));
        }
        out.push((arn.to_string(), weight));
    }
    if out.iter().map(|(_, w)| w).sum::<u64>() != 100 {
        return Err(bad("ValidationException", "the weights must sum to 100"));
    }
    Ok(out)
}

fn routing_json(r: &[(String, u64)]) -> Value {
    Value::Array(
        r.iter()
            .map(|(arn, w)| json!({"stateMachineVersionArn": arn, "weight": w}))
            .collect(),
    )
}

/// The machine ARN an alias or version ARN belongs to.
fn base_of(arn: &str) -> String {
    arn.split(':').take(7).collect::<Vec<_>>().join(":")
}

impl Server {
    pub fn publish_state_machine_version(self: &Arc<Self>, body: &Value) -> ApiResult {
        let mut store = self.store.lock().unwrap();
        let m = machine_mut(&mut store, str_arg(body, "stateMachineArn")?)?;
        let arn = m.publish(body["description"].as_str().unwrap_or_default());
        let created = m.versions.last().map(|v| v.created).unwrap_or_else(now);
        Ok(json!({"stateMachineVersionArn": arn, "creationDate": created}))
    }

    pub fn list_state_machine_versions(self: &Arc<Self>, body: &Value) -> ApiResult {
        let store = self.store.lock().unwrap();
        let m = machine(&store, str_arg(body, "stateMachineArn")?)?;
        let all: Vec<&Version> = m.versions.iter().rev().collect();
        let (range, next) = super::page(&all, body, 100)?;
        let items: Vec<Value> = all[range]
            .iter()
            .map(|v| json!({"stateMachineVersionArn": v.arn, "creationDate": v.created}))
            .collect();
        Ok(json!({"stateMachineVersions": items, "nextToken": next}))
    }

    pub fn delete_state_machine_version(self: &Arc<Self>, body: &Value) -> ApiResult {
        let arn = str_arg(body, "stateMachineVersionArn")?;
        let mut store = self.store.lock().unwrap();
        let Ok(m) = machine_mut(&mut store, &base_of(arn)) else {
            return Ok(json!({}));
        };
        if let Some(a) = m
            .aliases
            .values()
            .find(|a| a.routing.iter().any(|(v, _)| v == arn))
        {
            return Err(bad(
                "ConflictException",
                format!(
                    "Version to be deleted must not be referenced by an alias. Current list of aliases referencing this version: [{}]",
                    a.arn
                ),
            ));
        }
        m.versions.retain(|v| v.arn != arn);
        Ok(json!({}))
    }

    pub fn create_state_machine_alias(self: &Arc<Self>, body: &Value) -> ApiResult {
        let name = str_arg(body, "name")?;
        if !super::valid_name(name) || name.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad("InvalidName", format!("Invalid Name: '{name}'")));
        }
        let list = body["routingConfiguration"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let first = list
            .first()
            .and_then(|r| r["stateMachineVersionArn"].as_str())
            .ok_or_else(|| bad("ValidationException", "routingConfiguration is required"))?;
        let mut store = self.store.lock().unwrap();
        let m = machine_mut(&mut store, &base_of(first))?;
        let routing = routing(m, body)?;
        let arn = format!("{}:{name}", m.arn);
        if let Some(a) = m.aliases.get(name) {
            if a.routing == routing {
                return Ok(json!({"stateMachineAliasArn": a.arn, "creationDate": a.created}));
            }
            return Err(bad(
                "ConflictException",
                format!("An alias with the name {name} already exists"),
            ));
        }
        let created = now();
        m.aliases.insert(
            name.to_string(),
            Alias {
                arn: arn.clone(),
                name: name.to_string(),
                description: body["description"].as_str().unwrap_or_default().to_string(),
                routing,
                created,
                updated: created,
            },
        );
        Ok(json!({"stateMachineAliasArn": arn, "creationDate": created}))
    }

    pub fn describe_state_machine_alias(self: &Arc<Self>, body: &Value) -> ApiResult {
        let arn = str_arg(body, "stateMachineAliasArn")?;
        let store = self.store.lock().unwrap();
        let (m, Target::Alias(name)) = resolve(&store, arn)? else {
            return Err(bad(
                "ResourceNotFound",
                format!("Resource Not Found: '{arn}'"),
            ));
        };
        let a = &m.aliases[&name];
        Ok(
            json!({"stateMachineAliasArn": a.arn, "name": a.name, "description": a.description,
                  "routingConfiguration": routing_json(&a.routing), "creationDate": a.created, "updateDate": a.updated}),
        )
    }

    pub fn update_state_machine_alias(self: &Arc<Self>, body: &Value) -> ApiResult {
        let arn = str_arg(body, "stateMachineAliasArn")?;
        let mut store = self.store.lock().unwrap();
        let name = match resolve(&store, arn)? {
            (_, Target::Alias(name)) => name,
            _ => {
                return Err(bad(
                    "ResourceNotFound",
                    format!("Resource Not Found: '{arn}'"),
                ));
            }
        };
        let m = machine_mut(&mut store, &base_of(arn))?;
        let new_routing = match body.get("routingConfiguration") {
            Some(_) => Some(routing(m, body)?),
            None => None,
        };
        let a = m.aliases.get_mut(&name).expect("resolved above");
        if let Some(r) = new_routing {
            a.routing = r;
        }
        if let Some(d) = body["description"].as_str() {
            a.description = d.to_string();
        }
        a.updated = now();
        Ok(json!({"updateDate": a.updated}))
    }

    pub fn delete_state_machine_alias(self: &Arc<Self>, body: &Value) -> ApiResult {
        let arn = str_arg(body, "stateMachineAliasArn")?;
        let mut store = self.store.lock().unwrap();
        if let Ok(m) = machine_mut(&mut store, &base_of(arn)) {
            m.aliases.retain(|_, a| a.arn != arn);
        }
        Ok(json!({}))
    }

    pub fn list_state_machine_aliases(self: &Arc<Self>, body: &Value) -> ApiResult {
        let store = self.store.lock().unwrap();
        let m = machine(&store, str_arg(body, "stateMachineArn")?)?;
        let all: Vec<&Alias> = m.aliases.values().collect();
        let (range, next) = super::page(&all, body, 100)?;
        let items: Vec<Value> = all[range]
            .iter()
            .map(|a| json!({"stateMachineAliasArn": a.arn, "creationDate": a.created}))
            .collect();
        Ok(json!({"stateMachineAliases": items, "nextToken": next}))
    }
}
