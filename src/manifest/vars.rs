//! Stack variables: declared with a type and an optional default in the manifest, given with
//! `--var name=value` or a vars file (TOML, `name = value`); checked before any API call.

use crate::error::{Error, Result};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VarType {
    String,
    Number,
    Bool,
}

impl VarType {
    fn name(self) -> &'static str {
        match self {
            VarType::String => "string",
            VarType::Number => "number",
            VarType::Bool => "bool",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VarDecl {
    #[serde(rename = "type")]
    pub ty: VarType,
    pub default: Option<toml::Value>,
    #[serde(default)]
    pub description: String,
    /// The only values accepted, when given.
    pub allowed: Option<Vec<toml::Value>>,
    /// A secret: never shown (plans, outputs, logs) and kept in state only as a salted hash.
    #[serde(default)]
    pub sensitive: bool,
}

/// Values given on the command line and in vars files.
#[derive(Debug, Clone, Default)]
pub struct VarInputs {
    /// `name=value` as typed on the command line.
    pub pairs: Vec<String>,
    pub files: Vec<PathBuf>,
    /// Fill required variables that were not given with placeholders (validation only).
    pub placeholders: bool,
}

fn to_json(v: &toml::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn typed(ty: VarType, v: &Value) -> bool {
    match ty {
        VarType::String => v.is_string(),
        VarType::Number => v.is_number(),
        VarType::Bool => v.is_boolean(),
    }
}

fn parse_cli(ty: VarType, raw: &str) -> Option<Value> {
    match ty {
        VarType::String => Some(Value::String(raw.to_string())),
        VarType::Number => raw.parse::<i64>().map(Value::from).ok().or_else(|| {
            raw.parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
        }),
        VarType::Bool => match raw {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
    }
}

/// Resolves every declared variable to a value, or says which one is wrong and how to fix it.
pub fn resolve(
    stack: &str,
    decls: &BTreeMap<String, VarDecl>,
    inputs: &VarInputs,
) -> Result<BTreeMap<String, Value>> {
    let mut given: BTreeMap<String, (Value, String)> = BTreeMap::new();
    for file in &inputs.files {
        given.extend(read_var_file(file)?);
    }
    for pair in &inputs.pairs {
        let (k, v) = var_pair(stack, decls, pair)?;
        given.insert(k, v);
    }
    let mut out = BTreeMap::new();
    for (k, (v, where_)) in &given {
        let Some(d) = decls.get(k) else {
            let msg = format!("stack `{stack}` has no variable `{k}`; {}", declared(decls));
            return Err(Error::user(msg).at(where_.clone()));
        };
        if !typed(d.ty, v) {
            let msg = format!("variable `{k}` is a {}, and {v} is not one", d.ty.name());
            return Err(Error::user(msg).at(where_.clone()));
        }
        out.insert(k.clone(), v.clone());
    }
    for (k, d) in decls {
        if !out.contains_key(k) {
            let v = unset(stack, k, d, inputs.placeholders)?;
            out.insert(k.clone(), v);
            if d.default.is_none() {
                continue;
            }
        }
        if let Some(allowed) = &d.allowed {
            let allowed: Vec<Value> = allowed.iter().map(to_json).collect();
            if !allowed.contains(&out[k]) {
                let list: Vec<String> = allowed.iter().map(|v| v.to_string()).collect();
                return Err(Error::user(format!(
                    "variable `{k}` must be one of {}, not {}",
                    list.join(", "),
                    out[k]
                )));
            }
        }
    }
    Ok(out)
}

/// What a stack declares, for a message about a variable it does not.
fn declared(decls: &BTreeMap<String, VarDecl>) -> String {
    if decls.is_empty() {
        "it declares none".to_string()
    } else {
        let names: Vec<&str> = decls.keys().map(String::as_str).collect();
        format!("it declares: {}", names.join(", "))
    }
}

/// The variables of a `--var-file`, each with the file:line it was given at.
fn read_var_file(file: &std::path::Path) -> Result<BTreeMap<String, (Value, String)>> {
    let where_ = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::user(format!("cannot read vars file: {e}")).at(where_.clone()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        let at = e.span().map(|s| s.start).unwrap_or(0);
        let line = text[..at].matches('\n').count() + 1;
        Error::user(format!("invalid vars file: {}", e.message())).at(format!("{where_}:{line}"))
    })?;
    let mut given = BTreeMap::new();
    for (k, v) in table {
        let line = text
            .lines()
            .position(|l| l.trim_start().starts_with(&k))
            .map(|p| p + 1)
            .unwrap_or(1);
        given.insert(k, (to_json(&v), format!("{where_}:{line}")));
    }
    Ok(given)
}

/// One `--var name=value`: a declared variable, its value parsed as its type.
fn var_pair(
    stack: &str,
    decls: &BTreeMap<String, VarDecl>,
    pair: &str,
) -> Result<(String, (Value, String))> {
    let Some((k, raw)) = pair.split_once('=') else {
        return Err(
            Error::user(format!("`--var {pair}` is not of the form name=value"))
                .help("e.g. --var frequency_in_minutes=5"),
        );
    };
    let k = k.trim().to_string();
    let where_ = format!("--var {pair}");
    let Some(d) = decls.get(&k) else {
        let msg = format!("stack `{stack}` has no variable `{k}`; {}", declared(decls));
        let names = decls.keys().map(String::as_str);
        return Err(Error::user(msg).at(where_).suggest(&k, names));
    };
    let v = parse_cli(d.ty, raw).ok_or_else(|| {
        let msg = format!(
            "variable `{k}` is a {}, and {raw:?} is not one",
            d.ty.name()
        );
        Error::user(msg).at(where_.clone())
    })?;
    Ok((k, (v, where_)))
}

/// A variable that was not given: its default, a placeholder (validation only), or an error.
fn unset(stack: &str, k: &str, d: &VarDecl, placeholders: bool) -> Result<Value> {
    if let Some(v) = &d.default {
        return Ok(to_json(v));
    }
    if placeholders {
        return Ok(match d.ty {
            VarType::String => Value::String(format!("(unset: {k})")),
            VarType::Number => Value::from(0),
            VarType::Bool => Value::Bool(false),
        });
    }
    let what = if d.description.is_empty() {
        String::new()
    } else {
        format!(" ({})", d.description)
    };
    Err(Error::user(format!(
        "stack `{stack}` needs variable `{k}`{what}, and none was given"
    ))
    .help(format!(
        "pass --var {k}=VALUE, or put `{k} = ...` in a file given with --var-file"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decls() -> BTreeMap<String, VarDecl> {
        toml::from_str(
            r#"
            freq = { type = "number", default = 30 }
            email = { type = "string" }
            lang = { type = "string", default = "jsonpath", allowed = ["jsonpath", "jsonata"] }
            "#,
        )
        .unwrap()
    }

    fn inputs(pairs: &[&str]) -> VarInputs {
        VarInputs {
            pairs: pairs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_typed_cli_values() {
        let v = resolve("s", &decls(), &inputs(&["email=a@b.c", "freq=5"])).unwrap();
        assert_eq!(v["freq"], json!(5));
        assert_eq!(v["email"], json!("a@b.c"));
        assert_eq!(v["lang"], json!("jsonpath"));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = resolve("s", &decls(), &inputs(&["freq=5"])).unwrap_err();
        assert!(e.message.contains("needs variable `email`"), "{e}");
        let e = resolve("s", &decls(), &inputs(&["email=x", "nope=1"])).unwrap_err();
        assert!(
            e.message.contains("no variable `nope`") && e.message.contains("email, freq, lang"),
            "{e}"
        );
        let e = resolve("s", &decls(), &inputs(&["email=x", "freq=often"])).unwrap_err();
        assert!(e.message.contains("is a number"), "{e}");
        let e = resolve("s", &decls(), &inputs(&["email=x", "lang=yaml"])).unwrap_err();
        assert!(e.message.contains("must be one of"), "{e}");
        let e = resolve("s", &decls(), &inputs(&["email"])).unwrap_err();
        assert!(e.message.contains("name=value"), "{e}");
    }

    #[test]
    fn vars_file_values_are_typed_and_located() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("v.toml");
        std::fs::write(&f, "email = \"a@b\"\nfreq = \"often\"\n").unwrap();
        let e = resolve(
            "s",
            &decls(),
            &VarInputs {
                files: vec![f.clone()],
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.location.unwrap(), format!("{}:2", f.display()));
        std::fs::write(&f, "email = \"a@b\"\nfreq = 2\n").unwrap();
        let v = resolve(
            "s",
            &decls(),
            &VarInputs {
                pairs: vec!["freq=3".into()],
                files: vec![f],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(v["freq"], json!(3), "command line wins over the file");
    }
}
