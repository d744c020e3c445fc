//! State machine operations: create (the definition checked as AWS checks it), describe,
//! update, delete, list, tags, and ValidateStateMachineDefinition.

use super::Server;
use super::api::*;
use super::store::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

impl Server {
    pub(super) fn describe_state_machine(self: &Arc<Self>, body: &Value) -> ApiResult {
        let store = self.store.lock().unwrap();
        let arn = str_arg(body, "stateMachineArn")?;
        let (m, target) = resolve(&store, arn)?;
        let mut d = json!({"stateMachineArn": m.arn, "name": m.name, "status": "ACTIVE", "definition": m.definition, "roleArn": m.role_arn,
                           "type": m.kind, "creationDate": m.created, "loggingConfiguration": m.logging,
                           "encryptionConfiguration": m.encryption});
        // a version describes as itself: its own definition and role
        if let Target::Version(i) = target {
            let v = &m.versions[i];
            d["stateMachineArn"] = json!(v.arn);
            d["definition"] = json!(v.definition);
            d["roleArn"] = json!(v.role_arn);
            d["creationDate"] = json!(v.created);
            d["description"] = json!(v.description);
        }
        Ok(d)
    }

    pub(super) fn update_state_machine(self: &Arc<Self>, body: &Value) -> ApiResult {
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
        if body.get("encryptionConfiguration").is_some() {
            m.encryption = encryption(body)?;
        }
        let mut out = json!({"updateDate": now()});
        if body["publish"] == true {
            out["stateMachineVersionArn"] =
                json!(m.publish(body["versionDescription"].as_str().unwrap_or_default()));
        }
        Ok(out)
    }

    pub(super) fn delete_state_machine(self: &Arc<Self>, body: &Value) -> ApiResult {
        let arn = str_arg(body, "stateMachineArn")?;
        self.store.lock().unwrap().machines.remove(arn);
        Ok(json!({}))
    }

    pub(super) fn list_state_machines(self: &Arc<Self>, body: &Value) -> ApiResult {
        let store = self.store.lock().unwrap();
        let all: Vec<&Machine> = store.machines.values().collect();
        let (range, next) = page(&all, body, 100)?;
        let items: Vec<Value> = all[range]
                .iter()
                .map(|m| json!({"stateMachineArn": m.arn, "name": m.name, "type": m.kind, "creationDate": m.created}))
                .collect();
        Ok(json!({"stateMachines": items, "nextToken": next}))
    }

    pub(super) fn tag_resource(self: &Arc<Self>, body: &Value) -> ApiResult {
        let mut store = self.store.lock().unwrap();
        machine_mut(&mut store, str_arg(body, "resourceArn")?)?
            .tags
            .extend(tags_of(body));
        Ok(json!({}))
    }

    pub(super) fn untag_resource(self: &Arc<Self>, body: &Value) -> ApiResult {
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

    pub(super) fn list_tags_for_resource(self: &Arc<Self>, body: &Value) -> ApiResult {
        let store = self.store.lock().unwrap();
        let m = machine(&store, str_arg(body, "resourceArn")?)?;
        Ok(
            json!({"tags": m.tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()}),
        )
    }

    pub(super) fn validate_state_machine_definition(self: &Arc<Self>, body: &Value) -> ApiResult {
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
        // severity: the least one shown (ERROR unless told); at most maxResults of them (100)
        let warnings = match body["severity"].as_str() {
            None | Some("ERROR") => false,
            Some("WARNING") => true,
            Some(other) => {
                return Err(bad(
                    "ValidationException",
                    format!(
                        "1 validation error detected: Value '{other}' at 'severity' failed to satisfy constraint: Member must satisfy enum value set: [ERROR, WARNING]"
                    ),
                ));
            }
        };
        let shown: Vec<Value> = diagnostics
            .into_iter()
            .filter(|d| warnings || d["severity"] == "ERROR")
            .collect();
        let max = body["maxResults"]
            .as_u64()
            .filter(|m| *m > 0)
            .unwrap_or(100)
            .min(100) as usize;
        let truncated = shown.len() > max;
        let shown: Vec<Value> = shown.into_iter().take(max).collect();
        Ok(
            json!({"result": if ok { "OK" } else { "FAIL" }, "diagnostics": shown, "truncated": truncated}),
        )
    }

    pub(super) fn create_state_machine(
        &self,
        body: &Value,
    ) -> std::result::Result<Value, ApiError> {
        let (name, role_arn, text, parsed, kind) = create_args(body)?;
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
            encryption: encryption(body)?,
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
}

/// The definition is JSON and passes `deploy validate` (moto takes anything; AWS does not).
pub(super) fn check_definition(text: &str) -> std::result::Result<Value, ApiError> {
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

/// CreateStateMachine's name, role, definition (as text, and checked) and type, as AWS checks
/// them.
fn create_args(body: &Value) -> std::result::Result<(&str, &str, &str, Value, &str), ApiError> {
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
    Ok((name, role_arn, text, parsed, kind))
}

/// An encryptionConfiguration as AWS takes it: AWS's own key (the default), or a customer
/// managed KMS key named by kmsKeyId.
fn encryption(body: &Value) -> std::result::Result<Value, ApiError> {
    let c = &body["encryptionConfiguration"];
    match c["type"].as_str() {
        None if c.is_null() => Ok(json!({"type": "AWS_OWNED_KEY"})),
        Some("AWS_OWNED_KEY") => Ok(json!({"type": "AWS_OWNED_KEY"})),
        Some("CUSTOMER_MANAGED_KMS_KEY") if c["kmsKeyId"].is_string() => Ok(c.clone()),
        Some("CUSTOMER_MANAGED_KMS_KEY") => Err(bad(
            "InvalidEncryptionConfiguration",
            "kmsKeyId is required when type is CUSTOMER_MANAGED_KMS_KEY",
        )),
        _ => Err(bad(
            "InvalidEncryptionConfiguration",
            format!(
                "type must be AWS_OWNED_KEY or CUSTOMER_MANAGED_KMS_KEY, not {}",
                c["type"]
            ),
        )),
    }
}
