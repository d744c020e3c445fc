//! `${...}` references inside manifest values.
//!
//! - `${<resource>.<attribute>}`: an output of another resource (this is what builds the graph);
//! - `${var.<name>}`: a stack variable;
//! - `${env}`, `${stack}`, `${account_id}`, `${region}`, `${partition}`: the deployment's context;
//!   `${env_prefix}` is what the env puts before every name (`pr-1-`; nothing in the default
//!   env), for an ARN written from a name before the resource exists (a trust policy's
//!   `source_arn`, which cannot wait for the state machine that needs the role).
//!
//! A string that is exactly one reference takes the referenced value with its type (a number
//! variable stays a number); a reference inside a longer string is formatted into it.
//! A value that cannot be known yet (the output of a resource that is still to be created) is
//! replaced by a readable marker, `(known after apply: role.arn)`, that plans print as is.

use regex::Regex;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::LazyLock;

static REF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{\s*([A-Za-z_][A-Za-z0-9_-]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\s*\}").unwrap()
});

pub const UNKNOWN_PREFIX: &str = "(known after apply: ";

/// A parsed reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ref {
    Var(String),
    Context(String),
    Output { resource: String, attr: String },
}

pub const CONTEXT_NAMES: &[&str] = &[
    "env",
    "env_prefix",
    "stack",
    "account_id",
    "region",
    "partition",
];

/// Every reference in a string, in order, or an error naming the malformed one.
pub fn parse_refs(s: &str) -> Result<Vec<Ref>, String> {
    let mut out = Vec::new();
    for cap in REF.captures_iter(s) {
        let head = cap[1].to_string();
        let attr = cap.get(2).map(|m| m.as_str().to_string());
        out.push(match (head.as_str(), attr) {
            ("var", Some(name)) => Ref::Var(name),
            ("var", None) => return Err("`${var}` needs a variable name: `${var.NAME}`".into()),
            (ctx, None) if CONTEXT_NAMES.contains(&ctx) => Ref::Context(head),
            (_, None) => {
                return Err(format!(
                    "`${{{head}}}` is neither a context value ({}) nor `resource.attribute`",
                    CONTEXT_NAMES.join(", ")
                ));
            }
            (_, Some(attr)) => Ref::Output {
                resource: head,
                attr,
            },
        });
    }
    // A `${` that the pattern did not take is a typo worth reporting.
    let taken = REF.find_iter(s).count();
    if s.matches("${").count() != taken {
        return Err(format!(
            "malformed reference in {s:?}: write `${{resource.attribute}}` or `${{var.name}}`"
        ));
    }
    Ok(out)
}

/// Every reference anywhere inside a value.
pub fn collect(value: &Value, out: &mut Vec<Ref>) -> Result<(), String> {
    match value {
        Value::String(s) => out.extend(parse_refs(s)?),
        Value::Array(items) => {
            for v in items {
                collect(v, out)?;
            }
        }
        Value::Object(map) => {
            for v in map.values() {
                collect(v, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Where reference values come from.
pub trait Scope {
    fn var(&self, name: &str) -> Option<Value>;
    fn context(&self, name: &str) -> Option<Value>;
    /// `None` when the resource has no recorded outputs yet (unknown until apply).
    fn output(&self, resource: &str, attr: &str) -> Option<Value>;
}

pub fn unknown_marker(r: &Ref) -> String {
    match r {
        Ref::Var(n) => format!("{UNKNOWN_PREFIX}var.{n})"),
        Ref::Context(n) => format!("{UNKNOWN_PREFIX}{n})"),
        Ref::Output { resource, attr } => format!("{UNKNOWN_PREFIX}{resource}.{attr})"),
    }
}

fn lookup(scope: &dyn Scope, r: &Ref) -> Value {
    let found = match r {
        Ref::Var(n) => scope.var(n),
        Ref::Context(n) => scope.context(n),
        Ref::Output { resource, attr } => scope.output(resource, attr),
    };
    found.unwrap_or_else(|| Value::String(unknown_marker(r)))
}

/// Replaces every reference in a value. References must already have been checked by
/// [`collect`] (the loader does), so a malformed one here is left as written.
pub fn resolve(value: &Value, scope: &dyn Scope) -> Value {
    match value {
        Value::String(s) => resolve_str(s, scope),
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, scope)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), resolve(v, scope)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn resolve_str(s: &str, scope: &dyn Scope) -> Value {
    let Ok(refs) = parse_refs(s) else {
        return Value::String(s.to_string());
    };
    if refs.is_empty() {
        return Value::String(s.to_string());
    }
    if let Some(m) = REF.find(s) {
        if m.start() == 0 && m.end() == s.len() {
            return lookup(scope, &refs[0]);
        }
    }
    let mut i = 0;
    let out = REF.replace_all(s, |_: &regex::Captures| {
        let v = lookup(scope, &refs[i]);
        i += 1;
        match v {
            Value::String(s) => s,
            other => other.to_string(),
        }
    });
    Value::String(out.into_owned())
}

/// A scope over plain maps, for loading and tests.
#[derive(Default)]
pub struct MapScope {
    pub vars: BTreeMap<String, Value>,
    pub context: BTreeMap<String, Value>,
    pub outputs: BTreeMap<String, BTreeMap<String, Value>>,
}

impl Scope for MapScope {
    fn var(&self, name: &str) -> Option<Value> {
        self.vars.get(name).cloned()
    }
    fn context(&self, name: &str) -> Option<Value> {
        self.context.get(name).cloned()
    }
    fn output(&self, resource: &str, attr: &str) -> Option<Value> {
        self.outputs.get(resource)?.get(attr).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> MapScope {
        let mut s = MapScope::default();
        s.vars.insert("n".into(), json!(5));
        s.context.insert("env".into(), json!("pr-1"));
        s.outputs.insert(
            "role".into(),
            BTreeMap::from([("arn".into(), json!("arn:aws:iam::1:role/r"))]),
        );
        s
    }

    #[test]
    fn whole_reference_keeps_type_and_embedded_is_formatted() {
        let s = scope();
        assert_eq!(resolve(&json!("${var.n}"), &s), json!(5));
        assert_eq!(
            resolve(&json!("rate(${var.n} minutes)"), &s),
            json!("rate(5 minutes)")
        );
        assert_eq!(
            resolve(&json!({"a": ["${role.arn}/*"]}), &s),
            json!({"a": ["arn:aws:iam::1:role/r/*"]})
        );
        assert_eq!(resolve(&json!("${env}-x"), &s), json!("pr-1-x"));
    }

    #[test]
    fn missing_output_becomes_a_visible_unknown() {
        let v = resolve(&json!("${queue.arn}"), &scope());
        assert_eq!(v, json!("(known after apply: queue.arn)"));
    }

    #[test]
    fn parse_errors_are_explained() {
        assert!(parse_refs("${var}").unwrap_err().contains("variable name"));
        assert!(
            parse_refs("${nope}")
                .unwrap_err()
                .contains("neither a context")
        );
        assert!(parse_refs("${a b}").unwrap_err().contains("malformed"));
        assert_eq!(
            parse_refs("${a.b} ${var.c} ${region}").unwrap(),
            vec![
                Ref::Output {
                    resource: "a".into(),
                    attr: "b".into()
                },
                Ref::Var("c".into()),
                Ref::Context("region".into())
            ]
        );
    }
}
