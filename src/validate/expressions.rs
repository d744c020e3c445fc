//! Expressions in every field that takes one: JSONata `{% %}` templates (parsed, and the
//! `$states` members each field may read), JSONPath paths and `.$` keys, intrinsic calls.

use super::expr;
use super::findings::{Checker, esc};
use serde_json::{Map, Value};

/// JSONata expressions in JSONata states; paths, `.$` keys and intrinsics in JSONPath states.
// What `$states` holds where: a task's result only once it has one, the error only in a catcher.
pub(super) const BEFORE: &[&str] = &["input", "context"];

pub(super) const AFTER: &[&str] = &["input", "context", "result"];

pub(super) const CAUGHT: &[&str] = &["input", "context", "errorOutput"];

/// Every expression of a state, by field: JSONata `{% %}` strings, JSONPath paths, payload
/// templates and intrinsic calls.
pub(super) fn expressions(
    c: &mut Checker,
    name: &str,
    s: &Map<String, Value>,
    p: &str,
    lang: &str,
) {
    let has_result = matches!(
        s.get("Type").and_then(|t| t.as_str()),
        Some("Task" | "Parallel" | "Map")
    );
    let jp = lang == "JSONPath";
    for (k, v) in s {
        let kp = format!("{p}/{}", esc(k));
        match k.as_str() {
            "Choices" | "Catch" => rules(c, name, k, v, &kp, lang),
            "Branches" | "ItemProcessor" | "Iterator" | "Retry" => {}
            "Parameters" | "ResultSelector" | "ItemSelector" | "Assign" if jp => {
                walk(c, name, v, &kp, lang, true, BEFORE)
            }
            // AWS: ErrorPath and CausePath also take an intrinsic function
            "ErrorPath" | "CausePath"
                if jp
                    && v.as_str()
                        .is_some_and(|t| t.trim_start().starts_with("States.")) =>
            {
                if let Some(e) = v.as_str().and_then(expr::intrinsic_error) {
                    c.error(Some(name), &kp, e);
                }
            }
            "InputPath" | "OutputPath" | "ItemsPath" | "SecondsPath" | "TimestampPath"
            | "ErrorPath" | "CausePath" | "ResultPath"
                if jp =>
            {
                let reference = k == "ResultPath";
                if let Some(e) = v.as_str().and_then(|t| expr::jsonpath_error(t, reference)) {
                    c.error(Some(name), &kp, e);
                }
            }
            "Output" | "Assign" if !jp && has_result => walk(c, name, v, &kp, lang, false, AFTER),
            _ if !jp => walk(c, name, v, &kp, lang, false, BEFORE),
            _ => {}
        }
    }
}

/// Choice rules' JSONata conditions; catchers' Output and Assign, which see the error.
pub(super) fn rules(c: &mut Checker, name: &str, k: &str, v: &Value, kp: &str, lang: &str) {
    for (i, r) in v.as_array().into_iter().flatten().enumerate() {
        if k == "Choices" && lang == "JSONata" {
            if let Some(cond) = r.get("Condition") {
                walk(
                    c,
                    name,
                    cond,
                    &format!("{kp}/{i}/Condition"),
                    lang,
                    false,
                    BEFORE,
                );
            }
        }
        if k == "Catch" {
            for f in ["Output", "Assign"] {
                if let Some(x) = r.get(f) {
                    walk(c, name, x, &format!("{kp}/{i}/{f}"), lang, false, CAUGHT);
                }
            }
        }
    }
}

/// Walks a value for expressions: in JSONata, `{% %}` strings (they parse; `$states` members
/// exist here); in a JSONPath payload template, the keys ending in `.$`.
pub(super) fn walk(
    c: &mut Checker,
    name: &str,
    v: &Value,
    p: &str,
    lang: &str,
    payload: bool,
    members: &[&str],
) {
    match v {
        Value::String(text) if lang == "JSONata" => {
            if let Some(inner) = expr::jsonata_of(text).map(str::trim) {
                jsonata(c, name, inner, p, members);
            }
        }
        Value::Object(m) => {
            for (k, v) in m {
                let kp = format!("{p}/{}", esc(k));
                if lang == "JSONPath" && payload && k.ends_with(".$") {
                    dollar_key(c, name, k, v, &kp);
                } else if lang == "JSONata" && k.ends_with(".$") {
                    // AWS accepts it, as a key like any other (the value is not read as a path)
                    let msg = format!(
                        "{k}: in JSONata a key ending in .$ is a literal key and its value is not a path; write the value as {{% ... %}}"
                    );
                    c.add(super::findings::Severity::Warning, Some(name), &kp, msg);
                    walk(c, name, v, &kp, lang, payload, members);
                } else {
                    walk(c, name, v, &kp, lang, payload, members);
                }
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                walk(c, name, v, &format!("{p}/{i}"), lang, payload, members);
            }
        }
        _ => {}
    }
}

/// A JSONata expression: it parses (the error at its character), and every `$states.x` it
/// reads exists where it is.
pub(super) fn jsonata(c: &mut Checker, name: &str, inner: &str, p: &str, members: &[&str]) {
    if let Some((pos, msg)) = expr::jsonata_error(inner) {
        let msg = format!(
            "JSONata does not parse at character {} of `{inner}`: {msg}",
            pos + 1
        );
        c.error(Some(name), p, msg);
        c.out.last_mut().unwrap().expr_char = Some(pos);
    }
    for m in expr::states_members(inner) {
        if !members.contains(&m.as_str()) {
            let here: Vec<String> = members.iter().map(|m| format!("$states.{m}")).collect();
            c.error(
                Some(name),
                p,
                format!(
                    "$states.{m} does not exist here (here: {})",
                    here.join(", ")
                ),
            );
        }
    }
}

/// A JSONPath payload key ending in `.$`: its value is a path or an intrinsic call.
pub(super) fn dollar_key(c: &mut Checker, name: &str, k: &str, v: &Value, kp: &str) {
    let problem = match v.as_str() {
        Some(t) if t.trim_start().starts_with("States.") => expr::intrinsic_error(t),
        Some(t) => expr::jsonpath_error(t, false),
        None => Some(format!(
            "{k}: a key ending in .$ takes a path or an intrinsic call (a string)"
        )),
    };
    if let Some(e) = problem {
        c.error(Some(name), kp, e);
    }
}
