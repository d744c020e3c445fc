//! Checks a definition against the Amazon States Language before anything is deployed:
//! structure (targets exist, every state reachable, every path ends, fields per state type,
//! Choice rules, Retry / Catch, Wait, limits), query-language fields (a JSONata state uses no
//! JSONPath field and the reverse; a JSONPath machine may hold JSONata states, not the
//! reverse), and expressions (JSONata parses, JSONPath paths, intrinsic calls).

pub mod expr;
pub mod locate;
pub mod permissions;
mod variables;

use crate::asl;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// JSON pointer into the rendered definition.
    pub pointer: String,
    pub message: String,
    /// Where in `file` (1-based), once mapped from the pointer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// The character of a JSONata expression at the pointer the finding is about.
    #[serde(skip)]
    pub expr_char: Option<usize>,
    /// The source lines around the place, to show with a caret.
    #[serde(skip)]
    pub snippet: Option<crate::error::Snippet>,
}

impl Finding {
    pub fn new(
        severity: Severity,
        stack: Option<&str>,
        file: &str,
        state: Option<&str>,
        pointer: &str,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            severity,
            stack: stack.map(str::to_string),
            file: file.to_string(),
            state: state.map(str::to_string),
            pointer: pointer.to_string(),
            message: message.into(),
            line: None,
            column: None,
            expr_char: None,
            snippet: None,
        }
    }

    /// Points the finding at `span` of `text` (the file it names).
    pub fn place(&mut self, text: &std::sync::Arc<str>, span: std::ops::Range<usize>) {
        let (line, col) = crate::error::line_col(text, span.start);
        self.line = Some(line);
        self.column = Some(col);
        let label = match &self.state {
            Some(s) => format!("in state `{s}`"),
            None => String::new(),
        };
        self.snippet = Some(crate::error::Snippet {
            path: self.file.clone(),
            text: text.clone(),
            span,
            label,
        });
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "ERROR",
            Severity::Warning => "WARNING",
        };
        let stack = self
            .stack
            .as_ref()
            .map(|s| format!("stack {s}, "))
            .unwrap_or_default();
        let state = self
            .state
            .as_ref()
            .map(|s| format!(", state `{s}`"))
            .unwrap_or_default();
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(
                f,
                "{sev} {stack}{}:{l}:{c}{state}: {}",
                self.file, self.message
            ),
            _ => write!(
                f,
                "{sev} {stack}{}{state} at {}: {}",
                self.file,
                if self.pointer.is_empty() {
                    "/"
                } else {
                    &self.pointer
                },
                self.message
            ),
        }
    }
}

const MAX_NAME: usize = 80;
const STATES_ERRORS: &[&str] = &[
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
const JSONPATH_ONLY: &[&str] = &[
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
const JSONATA_ONLY: &[&str] = &["Arguments", "Output", "Items"];
const COMMON: &[&str] = &["Type", "Comment", "QueryLanguage", "Assign"];

fn allowed(ty: &str) -> &'static [&'static str] {
    match ty {
        "Task" => &[
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
        "Pass" => &[
            "Next",
            "End",
            "Result",
            "Parameters",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Output",
        ],
        "Choice" => &["Choices", "Default", "InputPath", "OutputPath", "Output"],
        "Wait" => &[
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
        "Succeed" => &["InputPath", "OutputPath", "Output"],
        "Fail" => &["Error", "Cause", "ErrorPath", "CausePath"],
        "Parallel" => &[
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
        "Map" => &[
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
        _ => &[],
    }
}

struct Checker<'a> {
    file: &'a str,
    stack: Option<&'a str>,
    out: Vec<Finding>,
}

impl Checker<'_> {
    fn add(
        &mut self,
        sev: Severity,
        state: Option<&str>,
        pointer: &str,
        message: impl Into<String>,
    ) {
        self.out.push(Finding::new(
            sev, self.stack, self.file, state, pointer, message,
        ));
    }
    fn error(&mut self, state: Option<&str>, pointer: &str, message: impl Into<String>) {
        self.add(Severity::Error, state, pointer, message);
    }
}

fn esc(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Checks one rendered definition.
pub fn check(def: &Value, file: &str, stack: Option<&str>) -> Vec<Finding> {
    let mut c = Checker {
        file,
        stack,
        out: Vec::new(),
    };
    let Some(top) = def.as_object() else {
        c.error(None, "", "a definition is a JSON object");
        return c.out;
    };
    let lang = match top.get("QueryLanguage").map(|v| v.as_str()) {
        None => "JSONPath",
        Some(Some(l @ ("JSONata" | "JSONPath"))) => l,
        Some(_) => {
            c.error(
                None,
                "/QueryLanguage",
                "QueryLanguage must be \"JSONata\" or \"JSONPath\"",
            );
            "JSONPath"
        }
    };
    let size = def.to_string().len();
    if size > 1_048_576 {
        c.error(
            None,
            "",
            format!("the definition is {size} bytes; Step Functions accepts at most 1,048,576"),
        );
    }
    if let Some(t) = top.get("TimeoutSeconds") {
        if !t.as_u64().is_some_and(|n| n > 0) {
            c.error(
                None,
                "/TimeoutSeconds",
                "TimeoutSeconds must be a positive integer",
            );
        }
    }
    let machine = asl::Machine::parse(def);
    let mut names = BTreeSet::new();
    scope(&mut c, &machine.top, lang, &mut names);
    variables::check(&mut c, &machine.top, &BTreeSet::new());
    c.out
}

/// One scope: the top level, a Parallel branch, or a Map item processor.
fn scope(c: &mut Checker, sc: &asl::Scope, lang: &str, names: &mut BTreeSet<String>) {
    let base = sc.pointer.as_str();
    let Some(states) = sc.states_object().filter(|s| !s.is_empty()) else {
        c.error(
            None,
            &format!("{base}/States"),
            "States must be an object with at least one state",
        );
        return;
    };
    let start = sc.start_at;
    let did_you_mean = |t: &str| {
        crate::error::closest(t, states.keys().map(String::as_str))
            .map(|m| format!(" (did you mean `{m}`?)"))
            .unwrap_or_default()
    };
    // A target that is not there is the one root cause: what it makes unreachable, or
    // endless, is not reported on top of it.
    let mut broken = false;
    match start {
        None => {
            broken = true;
            c.error(None, &format!("{base}/StartAt"), "StartAt is required")
        }
        Some(s) if !states.contains_key(s) => {
            broken = true;
            c.error(
                None,
                &format!("{base}/StartAt"),
                format!(
                    "StartAt names `{s}`, which is not a state here{}",
                    did_you_mean(s)
                ),
            )
        }
        _ => {}
    }
    for st in &sc.states {
        let (name, p) = (st.name, st.pointer.as_str());
        if !names.insert(name.to_string()) {
            c.error(
                Some(name),
                &p,
                "state names must be unique in the whole state machine",
            );
        }
        if name.chars().count() > MAX_NAME {
            c.error(
                Some(name),
                &p,
                format!("state names are at most {MAX_NAME} characters"),
            );
        }
        let Some(s) = st.object() else {
            c.error(Some(name), p, "a state is a JSON object");
            continue;
        };
        state(c, st, s, lang, names);
        for t in &st.transitions {
            if !states.contains_key(t.to) {
                broken = true;
                c.error(
                    Some(name),
                    &format!("{p}{}", t.at()),
                    format!("`{}` is not a state here{}", t.to, did_you_mean(t.to)),
                );
            }
        }
    }
    if broken {
        return;
    }
    // reachability from StartAt
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = start
        .filter(|s| states.contains_key(*s))
        .map(|s| vec![s.to_string()])
        .unwrap_or_default();
    while let Some(n) = todo.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        if let Some(s) = sc.state(&n).filter(|s| s.raw.is_object()) {
            todo.extend(
                s.transitions
                    .iter()
                    .map(|t| t.to.to_string())
                    .filter(|t| states.contains_key(t)),
            );
        }
    }
    for name in states.keys().filter(|n| !seen.contains(*n)) {
        c.error(
            Some(name),
            &format!("{base}/States/{}", esc(name)),
            "no path from StartAt reaches this state",
        );
    }
    // every path ends: from each reachable state some terminal state is reachable; walked
    // backwards from the terminal states, each edge once (linear in the definition's size)
    let mut from: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for st in sc.states.iter().filter(|s| s.raw.is_object()) {
        for t in &st.transitions {
            from.entry(t.to).or_default().push(st.name);
        }
    }
    let mut ends: BTreeSet<String> = sc
        .states
        .iter()
        .filter(|s| s.raw.is_object() && s.terminal)
        .map(|s| s.name.to_string())
        .collect();
    let mut todo: Vec<String> = ends.iter().cloned().collect();
    while let Some(t) = todo.pop() {
        for n in from.get(t.as_str()).into_iter().flatten() {
            if ends.insert(n.to_string()) {
                todo.push(n.to_string());
            }
        }
    }
    for name in seen.iter().filter(|n| !ends.contains(*n)) {
        c.error(
            Some(name),
            &format!("{base}/States/{}", esc(name)),
            "no path from this state ever ends (a loop with no way out)",
        );
    }
}

/// One state: its type, its query language, the fields it may have, how it moves on, what
/// its type needs, then its retriers and expressions.
fn state(
    c: &mut Checker,
    st: &asl::State,
    s: &Map<String, Value>,
    machine_lang: &str,
    names: &mut BTreeSet<String>,
) {
    let (name, p) = (st.name, st.pointer.as_str());
    let ty = s.get("Type").and_then(|v| v.as_str()).unwrap_or("");
    if allowed(ty).is_empty() {
        let msg = format!(
            "Type must be Task, Pass, Choice, Wait, Succeed, Fail, Parallel or Map, not {ty:?}"
        );
        c.error(Some(name), &format!("{p}/Type"), msg);
        return;
    }
    let lang = state_language(c, st, machine_lang);
    fields(c, name, ty, s, p, lang);
    let flows = matches!(ty, "Task" | "Pass" | "Wait" | "Parallel" | "Map");
    let has_end = s.get("End").and_then(|v| v.as_bool()) == Some(true);
    if flows && s.contains_key("Next") == has_end {
        c.error(
            Some(name),
            p,
            format!("a {ty} state needs exactly one of Next and \"End\": true"),
        );
    }
    match ty {
        "Task" => task(c, name, s, p),
        "Choice" => choices(c, name, s, p, lang),
        "Wait" => wait(c, name, s, p),
        "Parallel" => parallel(c, st, s, machine_lang, names),
        "Map" => map(c, st, s, machine_lang, names),
        _ => {}
    }
    retriers(c, name, s, p, lang);
    expressions(c, name, s, p, lang);
}

/// The state's query language, as the model resolved it (its own, else the machine's); says
/// what is wrong with the one it names (a JSONata machine holds no JSONPath state).
fn state_language(c: &mut Checker, st: &asl::State, machine_lang: &str) -> &'static str {
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
fn fields(c: &mut Checker, name: &str, ty: &str, s: &Map<String, Value>, p: &str, lang: &str) {
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

fn task(c: &mut Checker, name: &str, s: &Map<String, Value>, p: &str) {
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

fn wait(c: &mut Checker, name: &str, s: &Map<String, Value>, p: &str) {
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

fn parallel(
    c: &mut Checker,
    st: &asl::State,
    s: &Map<String, Value>,
    lang: &str,
    names: &mut BTreeSet<String>,
) {
    let (name, p) = (st.name, st.pointer.as_str());
    let Some(branches) = s
        .get("Branches")
        .and_then(|v| v.as_array())
        .filter(|b| !b.is_empty())
    else {
        c.error(
            Some(name),
            &format!("{p}/Branches"),
            "a Parallel state needs at least one branch",
        );
        return;
    };
    for (b, inner) in branches.iter().zip(&st.scopes) {
        match b.as_object() {
            Some(_) => scope(c, inner, lang, names),
            None => c.error(Some(name), &inner.pointer, "a branch is a JSON object"),
        }
    }
}

fn map(
    c: &mut Checker,
    st: &asl::State,
    s: &Map<String, Value>,
    lang: &str,
    names: &mut BTreeSet<String>,
) {
    let (name, p) = (st.name, st.pointer.as_str());
    match st.processor() {
        Some(inner) => scope(c, inner, lang, names),
        None => c.error(Some(name), p, "a Map state needs an ItemProcessor"),
    }
    if let Some(m) = s.get("MaxConcurrency") {
        if m.as_u64().is_none() && m.as_str().and_then(expr::jsonata_of).is_none() {
            let at = format!("{p}/MaxConcurrency");
            c.error(
                Some(name),
                &at,
                "MaxConcurrency must be a non-negative integer",
            );
        }
    }
    if let Some(t) = s.get("ToleratedFailurePercentage").and_then(|v| v.as_f64()) {
        if !(0.0..=100.0).contains(&t) {
            let at = format!("{p}/ToleratedFailurePercentage");
            c.error(Some(name), &at, "ToleratedFailurePercentage is 0 to 100");
        }
    }
}

fn error_names(c: &mut Checker, name: &str, list: &Value, p: &str, last: bool) {
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
            c.error(
                Some(name),
                &format!("{p}/{i}"),
                format!("{e} is not one of the States.* error names"),
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

fn retriers(c: &mut Checker, name: &str, s: &Map<String, Value>, p: &str, lang: &str) {
    if let Some(rs) = s.get("Retry").and_then(|v| v.as_array()) {
        for (i, r) in rs.iter().enumerate() {
            let rp = format!("{p}/Retry/{i}");
            error_names(
                c,
                name,
                &r["ErrorEquals"],
                &format!("{rp}/ErrorEquals"),
                i + 1 == rs.len(),
            );
            if r.get("IntervalSeconds")
                .is_some_and(|v| !v.as_u64().is_some_and(|x| x >= 1))
            {
                c.error(
                    Some(name),
                    &format!("{rp}/IntervalSeconds"),
                    "IntervalSeconds is a positive integer",
                );
            }
            if r.get("MaxAttempts").is_some_and(|v| v.as_u64().is_none()) {
                c.error(
                    Some(name),
                    &format!("{rp}/MaxAttempts"),
                    "MaxAttempts is a non-negative integer",
                );
            }
            if r.get("BackoffRate")
                .is_some_and(|v| !v.as_f64().is_some_and(|x| x >= 1.0))
            {
                c.error(
                    Some(name),
                    &format!("{rp}/BackoffRate"),
                    "BackoffRate is a number of at least 1.0",
                );
            }
            if r.get("JitterStrategy")
                .is_some_and(|v| !matches!(v.as_str(), Some("FULL" | "NONE")))
            {
                c.error(
                    Some(name),
                    &format!("{rp}/JitterStrategy"),
                    "JitterStrategy is FULL or NONE",
                );
            }
        }
    }
    if let Some(cs) = s.get("Catch").and_then(|v| v.as_array()) {
        for (i, r) in cs.iter().enumerate() {
            let cp = format!("{p}/Catch/{i}");
            error_names(
                c,
                name,
                &r["ErrorEquals"],
                &format!("{cp}/ErrorEquals"),
                i + 1 == cs.len(),
            );
            if !r.get("Next").is_some_and(|v| v.is_string()) {
                c.error(Some(name), &format!("{cp}/Next"), "a catcher needs Next");
            }
            if lang == "JSONata" && r.get("ResultPath").is_some() {
                c.error(
                    Some(name),
                    &format!("{cp}/ResultPath"),
                    "ResultPath is a JSONPath field; this state uses JSONata (use Output)",
                );
            }
        }
    }
}

fn choices(c: &mut Checker, name: &str, s: &Map<String, Value>, p: &str, lang: &str) {
    let Some(rules) = s
        .get("Choices")
        .and_then(|v| v.as_array())
        .filter(|r| !r.is_empty())
    else {
        c.error(
            Some(name),
            &format!("{p}/Choices"),
            "a Choice state needs at least one rule in Choices",
        );
        return;
    };
    if !s.contains_key("Default") {
        c.add(
            Severity::Warning,
            Some(name),
            p,
            "no Default: an input no rule matches fails the execution with States.NoChoiceMatched",
        );
    }
    for (i, r) in rules.iter().enumerate() {
        let rp = format!("{p}/Choices/{i}");
        if !r.get("Next").is_some_and(|v| v.is_string()) {
            c.error(
                Some(name),
                &format!("{rp}/Next"),
                "a Choice rule needs Next",
            );
        }
        rule(c, name, r, &rp, lang, true);
    }
}

const COMPARATORS: &[&str] = &[
    "StringEquals",
    "StringEqualsPath",
    "StringLessThan",
    "StringLessThanPath",
    "StringGreaterThan",
    "StringGreaterThanPath",
    "StringLessThanEquals",
    "StringLessThanEqualsPath",
    "StringGreaterThanEquals",
    "StringGreaterThanEqualsPath",
    "StringMatches",
    "NumericEquals",
    "NumericEqualsPath",
    "NumericLessThan",
    "NumericLessThanPath",
    "NumericGreaterThan",
    "NumericGreaterThanPath",
    "NumericLessThanEquals",
    "NumericLessThanEqualsPath",
    "NumericGreaterThanEquals",
    "NumericGreaterThanEqualsPath",
    "BooleanEquals",
    "BooleanEqualsPath",
    "TimestampEquals",
    "TimestampEqualsPath",
    "TimestampLessThan",
    "TimestampLessThanPath",
    "TimestampGreaterThan",
    "TimestampGreaterThanPath",
    "TimestampLessThanEquals",
    "TimestampLessThanEqualsPath",
    "TimestampGreaterThanEquals",
    "TimestampGreaterThanEqualsPath",
    "IsNull",
    "IsPresent",
    "IsNumeric",
    "IsString",
    "IsBoolean",
    "IsTimestamp",
];

fn rule(c: &mut Checker, name: &str, r: &Value, rp: &str, lang: &str, top: bool) {
    let Some(o) = r.as_object() else {
        c.error(Some(name), rp, "a Choice rule is a JSON object");
        return;
    };
    if lang == "JSONata" {
        // AWS: a Condition is an expression, or the literal true or false
        let condition = o.get("Condition");
        if !condition.is_some_and(|v| {
            v.is_boolean() || v.as_str().is_some_and(|s| expr::jsonata_of(s).is_some())
        }) {
            c.error(
                Some(name),
                &format!("{rp}/Condition"),
                "a JSONata Choice rule needs a Condition written {% ... %} (or true / false)",
            );
        }
        if o.contains_key("Variable") {
            c.error(
                Some(name),
                &format!("{rp}/Variable"),
                "Variable is a JSONPath field; this state uses JSONata (use Condition)",
            );
        }
        return;
    }
    if o.contains_key("Condition") {
        c.error(
            Some(name),
            &format!("{rp}/Condition"),
            "Condition is a JSONata field; this state uses JSONPath",
        );
        return;
    }
    if !top && o.contains_key("Next") {
        c.error(
            Some(name),
            &format!("{rp}/Next"),
            "only top-level Choice rules have Next",
        );
    }
    let bool_ops: Vec<&str> = ["And", "Or", "Not"]
        .into_iter()
        .filter(|k| o.contains_key(*k))
        .collect();
    let comparators: Vec<&String> = o
        .keys()
        .filter(|k| COMPARATORS.contains(&k.as_str()))
        .collect();
    match (bool_ops.as_slice(), comparators.len()) {
        ([], 1) => match o.get("Variable").and_then(|v| v.as_str()) {
            None => c.error(
                Some(name),
                &format!("{rp}/Variable"),
                "a comparison needs Variable",
            ),
            Some(v) => {
                if let Some(e) = expr::jsonpath_error(v, false) {
                    c.error(Some(name), &format!("{rp}/Variable"), e);
                }
            }
        },
        ([], 0) => c.error(
            Some(name),
            rp,
            "a Choice rule needs one comparison (e.g. StringEquals) or And / Or / Not",
        ),
        ([], _) => c.error(Some(name), rp, "a Choice rule has exactly one comparison"),
        (["Not"], 0) => rule(c, name, &o["Not"], &format!("{rp}/Not"), lang, false),
        (["And"] | ["Or"], 0) => {
            let op = bool_ops[0];
            match o[op].as_array().filter(|a| !a.is_empty()) {
                None => c.error(
                    Some(name),
                    &format!("{rp}/{op}"),
                    format!("{op} takes a non-empty list of rules"),
                ),
                Some(rs) => rs
                    .iter()
                    .enumerate()
                    .for_each(|(i, r)| rule(c, name, r, &format!("{rp}/{op}/{i}"), lang, false)),
            }
        }
        _ => c.error(
            Some(name),
            rp,
            "a Choice rule has one of And, Or, Not, or one comparison",
        ),
    }
}

/// JSONata expressions in JSONata states; paths, `.$` keys and intrinsics in JSONPath states.
// What `$states` holds where: a task's result only once it has one, the error only in a catcher.
const BEFORE: &[&str] = &["input", "context"];
const AFTER: &[&str] = &["input", "context", "result"];
const CAUGHT: &[&str] = &["input", "context", "errorOutput"];

/// Every expression of a state, by field: JSONata `{% %}` strings, JSONPath paths, payload
/// templates and intrinsic calls.
fn expressions(c: &mut Checker, name: &str, s: &Map<String, Value>, p: &str, lang: &str) {
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
fn rules(c: &mut Checker, name: &str, k: &str, v: &Value, kp: &str, lang: &str) {
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
fn walk(
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
                    let msg = format!(
                        "{k}: keys ending in .$ are JSONPath; in JSONata write the value as {{% ... %}}"
                    );
                    c.error(Some(name), &kp, msg);
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
fn jsonata(c: &mut Checker, name: &str, inner: &str, p: &str, members: &[&str]) {
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
fn dollar_key(c: &mut Checker, name: &str, k: &str, v: &Value, kp: &str) {
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

#[cfg(test)]
mod tests;
