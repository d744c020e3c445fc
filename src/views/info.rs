//! What a project holds, as tables for people and documents for CI: its stacks and where they
//! are deployed, environments, a stack's outputs, a state machine's executions.

use crate::options::Format;
use crate::output::table;
use crate::state::Env;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A value as people read it: a string as it is, anything else as JSON; secrets masked.
pub fn shown(v: &Value) -> String {
    let v = crate::secrets::mask(v, &[], &[]);
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// `deploy list`: one row per stack and env it is deployed in.
pub fn stacks(rows: &[Value], format: Format) {
    if format == Format::Json {
        outln!("{}", super::json_doc(json!({"stacks": rows})));
        return;
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let text = |k: &str, none: &str| r[k].as_str().unwrap_or(none).to_string();
            vec![
                text("stack", ""),
                text("env", "-"),
                r["resources"].to_string(),
                text("status", ""),
            ]
        })
        .collect();
    outp!(
        "{}",
        table(
            &["STACK", "ENV", "RESOURCES", "STATUS"],
            &cells,
            &["RESOURCES"]
        )
    );
}

/// `deploy outputs`: every output of a stack.
pub fn outputs(stack: &str, env: &str, outputs: &BTreeMap<String, Value>, format: Format) {
    match format {
        Format::Json => {
            let masked = crate::secrets::mask(&serde_json::to_value(outputs).unwrap(), &[], &[]);
            let doc = super::json_doc(json!({"stack": stack, "env": env, "outputs": masked}));
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap())
        }
        Format::Markdown => {
            outln!("### `{stack}` (env `{env}`)\n");
            outp!("{}", outputs_markdown(outputs));
        }
        Format::Text => {
            for (k, v) in outputs {
                outln!("{k} = {}", shown(v));
            }
        }
    }
}

/// `deploy outputs STACK NAME`: one value, raw, for scripts.
pub fn one_output(v: &Value) {
    outln!("{}", shown(v));
}

/// A stack's outputs as a Markdown table (secrets masked).
pub fn outputs_markdown(outputs: &BTreeMap<String, Value>) -> String {
    let mut out = String::from("| output | value |\n|---|---|\n");
    for (k, v) in outputs {
        out.push_str(&format!("| `{k}` | `{}` |\n", shown(v).replace('|', "\\|")));
    }
    out
}

pub fn when(t: Option<u64>) -> String {
    match t {
        None => "-".into(),
        Some(t) => {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t);
            humantime::format_rfc3339_seconds(at).to_string()
        }
    }
}

/// `deploy envs`: each environment, its stacks, lifetime and who brought it up last.
pub fn envs(envs: &[Env], location: &str, format: Format) {
    if format == Format::Json {
        outln!("{}", super::json_doc(json!({"envs": envs})));
        return;
    }
    if envs.is_empty() {
        outln!("No environments recorded in {location}.");
        return;
    }
    let cells: Vec<Vec<String>> = envs
        .iter()
        .map(|e| {
            let resources = if e.state {
                e.resources.to_string()
            } else {
                "no state (found by tags)".into()
            };
            let by = e.by.clone().unwrap_or_else(|| "-".into());
            vec![
                e.env.clone(),
                resources,
                when(e.created),
                when(e.last_up),
                by,
                e.branch.clone().unwrap_or_else(|| "-".into()),
                when(e.expires),
                e.stacks.join(", "),
            ]
        })
        .collect();
    let header = [
        "ENV",
        "RESOURCES",
        "CREATED",
        "LAST UP",
        "BY",
        "BRANCH",
        "EXPIRES",
        "STACKS",
    ];
    outp!("{}", table(&header, &cells, &["RESOURCES"]));
}

/// `deploy executions`: recent executions, newest first.
pub fn executions(rows: &[Value], format: Format) {
    if format == Format::Json {
        outln!("{}", super::json_doc(json!({"executions": rows})));
        return;
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            let secs = r["seconds"]
                .as_f64()
                .map(|s| format!("{s:.1}"))
                .unwrap_or_else(|| "running".into());
            vec![text("name"), text("status"), text("start"), secs]
        })
        .collect();
    outp!(
        "{}",
        table(
            &["NAME", "STATUS", "STARTED", "SECONDS"],
            &cells,
            &["SECONDS"]
        )
    );
}
