//! State machine versions and aliases in `deploy local`, as Step Functions has them: a version
//! is an immutable snapshot (definition and role) numbered from 1, `<machine ARN>:<n>`; an alias
//! `<machine ARN>:<name>` routes executions to one or two versions by weight. StartExecution on
//! an alias picks the version per execution by those weights; DescribeExecution and
//! ListExecutions then say which version and alias an execution ran on.

use super::Server;
use super::api::*;
use super::store::*;
use serde_json::{Value, json};
use std::sync::Arc;

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
        let (range, next) = page(&all, body, 100)?;
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
        if !valid_name(name) || name.chars().all(|c| c.is_ascii_digit()) {
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
        let (range, next) = page(&all, body, 100)?;
        let items: Vec<Value> = all[range]
            .iter()
            .map(|a| json!({"stateMachineAliasArn": a.arn, "creationDate": a.created}))
            .collect();
        Ok(json!({"stateMachineAliases": items, "nextToken": next}))
    }
}
