//! Fields per state type: which fields a state of each type and query language may have, and
//! the rules of Task, Wait, and of Retry / Catch error names.

use super::expr;
use super::findings::{Checker, Severity, esc};
use crate::asl;
use serde_json::{Map, Value};

pub(super) const STATES_ERRORS: &[&str] = &[
    "States.ALL",
    "States.HeartbeatTimeout",
    "States.Timeout",
    "States.TaskFailed",
    "States.Permissions",
    "States.ResultPathMatchFailure",
    "States.ParameterPathFailure",
    "States.BranchFailed",
    "States.NoChoiceMatched",
    "States.IntrinsicFailure",
    "States.ExceedToleratedFailureThreshold",
    "States.ItemReaderFailed",
    "States.ResultWriterFailed",
    "States.QueryEvaluationError",
    "States.Runtime",
    "States.DataLimitExceeded",
];

pub(super) const JSONPATH_ONLY: &[&str] = &[
    "InputPath",
    "OutputPath",
    "Parameters",
    "ResultPath",
    "ResultSelector",
    "ItemsPath",
    "SecondsPath",
    "TimestampPath",
    "ErrorPath",
    "CausePath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "Result",
];

pub(super) const JSONATA_ONLY: &[&str] = &["Arguments", "Output", "Items"];

pub(super) const COMMON: &[&str] = &["Type", "Comment", "QueryLanguage", "Assign"];

pub(super) fn allowed(ty: &str) -> &'static [&'static str] {
    FIELDS
        .iter()
        .find(|(t, _)| *t == ty)
        .map_or(&[], |(_, fields)| fields)
}

/// The fields a state of each type may have (in either query language).
const FIELDS: &[(&str, &[&str])] = &[
    (
        "Task",
        &[
            "Next",
            "End",
            "Resource",
            "Arguments",
            "Output",
            "Parameters",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "ResultSelector",
            "Retry",
            "Catch",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Credentials",
        ],
    ),
    (
        "Pass",
        &[
            "Next",
            "End",
            "Result",
            "Parameters",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Output",
        ],
    ),
    (
        "Choice",
        &["Choices", "Default", "InputPath", "OutputPath", "Output"],
    ),
    (
        "Wait",
        &[
            "Next",
            "End",
            "Seconds",
            "Timestamp",
            "SecondsPath",
            "TimestampPath",
            "InputPath",
            "OutputPath",
            "Output",
        ],
    ),
    ("Succeed", &["InputPath", "OutputPath", "Output"]),
    ("Fail", &["Error", "Cause", "ErrorPath", "CausePath"]),
    (
        "Parallel",
        &[
            "Next",
            "End",
            "Branches",
            "Arguments",
            "Output",
            "Parameters",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "ResultSelector",
            "Retry",
            "Catch",
        ],
    ),
    (
        "Map",
        &[
            "Next",
            "End",
            "ItemProcessor",
            "Iterator",
            "ItemsPath",
            "Items",
            "ItemSelector",
            "Parameters",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            "Label",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "ResultSelector",
            "Retry",
            "Catch",
            "Arguments",
            "Output",
        ],
    ),
];

/// The state's query language, as the model resolved it (its own, else the machine's); says
/// what is wrong with the one it names (a JSONata machine holds no JSONPath state).
pub(super) fn state_language(c: &mut Checker, st: &asl::State, machine_lang: &str) -> &'static str {
    let at = format!("{}/QueryLanguage", st.pointer);
    match st.raw.get("QueryLanguage").and_then(|v| v.as_str()) {
        Some("JSONPath") if machine_lang == "JSONata" => c.error(
            Some(st.name),
            &at,
            "a JSONata state machine cannot hold JSONPath states",
        ),
        Some("JSONata" | "JSONPath") | None => {}
        Some(_) => c.error(
            Some(st.name),
            &at,
            "QueryLanguage must be \"JSONata\" or \"JSONPath\"",
        ),
    }
    st.language.name()
}

/// Every field is one the state's type has, and of the state's query language.
pub(super) fn fields(
    c: &mut Checker,
    name: &str,
    ty: &str,
    s: &Map<String, Value>,
    p: &str,
    lang: &str,
) {
    for key in s.keys().map(String::as_str) {
        let at = format!("{p}/{}", esc(key));
        if !COMMON.contains(&key) && !allowed(ty).contains(&key) {
            c.error(Some(name), &at, format!("a {ty} state has no field {key}"));
        } else if lang == "JSONata" && JSONPATH_ONLY.contains(&key) {
            let msg = format!(
                "{key} is a JSONPath field; this state uses JSONata (use Arguments / Output / Assign)"
            );
            c.error(Some(name), &at, msg);
        } else if lang == "JSONPath" && JSONATA_ONLY.contains(&key) {
            let msg = format!(
                "{key} is a JSONata field; this state uses JSONPath (set \"QueryLanguage\": \"JSONata\")"
            );
            c.error(Some(name), &at, msg);
        }
    }
}

pub(super) fn task(c: &mut Checker, name: &str, s: &Map<String, Value>, p: &str) {
    if !s.get("Resource").is_some_and(|r| r.is_string()) {
        c.error(
            Some(name),
            &format!("{p}/Resource"),
            "a Task state needs a Resource",
        );
    }
    for f in ["TimeoutSeconds", "HeartbeatSeconds"] {
        let Some(v) = s.get(f) else { continue };
        if !(v.as_u64().is_some_and(|x| x > 0) || v.as_str().and_then(expr::jsonata_of).is_some()) {
            c.error(
                Some(name),
                &format!("{p}/{f}"),
                format!("{f} must be a positive integer"),
            );
        }
    }
}

pub(super) fn wait(c: &mut Checker, name: &str, s: &Map<String, Value>, p: &str) {
    let fields = ["Seconds", "Timestamp", "SecondsPath", "TimestampPath"];
    let present: Vec<&str> = fields
        .iter()
        .copied()
        .filter(|f| s.contains_key(*f))
        .collect();
    if present.len() != 1 {
        let has = if present.is_empty() {
            "none".into()
        } else {
            present.join(", ")
        };
        let msg = format!(
            "a Wait state needs exactly one of Seconds, Timestamp, SecondsPath, TimestampPath (has {has})"
        );
        c.error(Some(name), p, msg);
    }
}

pub(super) fn error_names(c: &mut Checker, name: &str, list: &Value, p: &str, last: bool) {
    let Some(errs) = list.as_array().filter(|a| !a.is_empty()) else {
        c.error(Some(name), p, "ErrorEquals needs at least one error name");
        return;
    };
    for (i, e) in errs.iter().enumerate() {
        let Some(e) = e.as_str() else {
            c.error(Some(name), &format!("{p}/{i}"), "error names are strings");
            continue;
        };
        if e.starts_with("States.") && !STATES_ERRORS.contains(&e) {
            // AWS deploys a custom name in the States. namespace (a Fail state can throw it)
            let near = STATES_ERRORS
                .iter()
                .map(|n| (strsim::levenshtein(n, e), n))
                .min()
                .filter(|(d, _)| *d <= 3)
                .map(|(_, n)| format!("; did you mean {n}?"))
                .unwrap_or_default();
            c.add(
                Severity::Warning,
                Some(name),
                &format!("{p}/{i}"),
                format!("{e} is not one of the States.* error names: only a Fail state or a task can throw it{near}"),
            );
        }
        if e == "States.ALL" && (errs.len() > 1 || !last) {
            c.error(
                Some(name),
                &format!("{p}/{i}"),
                "States.ALL must be alone, in the last retrier or catcher",
            );
        }
    }
}

pub(super) fn retriers(c: &mut Checker, name: &str, s: &Map<String, Value>, p: &str, lang: &str) {
    if let Some(rs) = s.get("Retry").and_then(|v| v.as_array()) {
        for (i, r) in rs.iter().enumerate() {
            let rp = format!("{p}/Retry/{i}");
            let last = i + 1 == rs.len();
            error_names(
                c,
                name,
                &r["ErrorEquals"],
                &format!("{rp}/ErrorEquals"),
                last,
            );
            retrier(c, name, r, &rp);
        }
    }
    if let Some(cs) = s.get("Catch").and_then(|v| v.as_array()) {
        for (i, r) in cs.iter().enumerate() {
            let cp = format!("{p}/Catch/{i}");
            let last = i + 1 == cs.len();
            error_names(
                c,
                name,
                &r["ErrorEquals"],
                &format!("{cp}/ErrorEquals"),
                last,
            );
            if !r.get("Next").is_some_and(|v| v.is_string()) {
                c.error(Some(name), &format!("{cp}/Next"), "a catcher needs Next");
            }
            if lang == "JSONata" && r.get("ResultPath").is_some() {
                let msg = "ResultPath is a JSONPath field; this state uses JSONata (use Output)";
                c.error(Some(name), &format!("{cp}/ResultPath"), msg);
            }
        }
    }
}

/// A retrier's fields, in AWS's ranges.
fn retrier(c: &mut Checker, name: &str, r: &Value, rp: &str) {
    let rules: [(&str, fn(&Value) -> bool, &str); 4] = [
        (
            "IntervalSeconds",
            |v| v.as_u64().is_some_and(|x| x >= 1),
            "IntervalSeconds is a positive integer",
        ),
        (
            "MaxAttempts",
            |v| v.as_u64().is_some(),
            "MaxAttempts is a non-negative integer",
        ),
        (
            "BackoffRate",
            |v| v.as_f64().is_some_and(|x| x >= 1.0),
            "BackoffRate is a number of at least 1.0",
        ),
        (
            "JitterStrategy",
            |v| matches!(v.as_str(), Some("FULL" | "NONE")),
            "JitterStrategy is FULL or NONE",
        ),
    ];
    for (field, ok, msg) in rules {
        if r.get(field).is_some_and(|v| !ok(v)) {
            c.error(Some(name), &format!("{rp}/{field}"), msg);
        }
    }
}
