//! Checks a definition against the Amazon States Language before anything is deployed:
//! structure (targets exist, every state reachable, every path ends, fields per state type,
//! Choice rules, Retry / Catch, Wait, limits), query-language fields (a JSONata state uses no
//! JSONPath field and the reverse; a JSONPath machine may hold JSONata states, not the
//! reverse), and expressions (JSONata parses, JSONPath paths, intrinsic calls).

pub mod arns;
mod choice;
pub mod expr;
mod expressions;
mod fields;
mod findings;
pub mod locate;
pub mod permissions;
mod variables;

use choice::choices;
use expressions::expressions;
use fields::{allowed, fields, retriers, state_language, task, wait};
use findings::{Checker, esc};
pub use findings::{Finding, Severity};

use crate::asl;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

const MAX_NAME: usize = 80;
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
    let did_you_mean = |t: &str| {
        crate::error::closest(t, states.keys().map(String::as_str))
            .map(|m| format!(" (did you mean `{m}`?)"))
            .unwrap_or_default()
    };
    // A target that is not there is the one root cause: what it makes unreachable, or
    // endless, is not reported on top of it.
    let mut broken = !start_exists(c, sc, states, &did_you_mean);
    for st in &sc.states {
        let (name, p) = (st.name, st.pointer.as_str());
        if !names.insert(name.to_string()) {
            let msg = "state names must be unique in the whole state machine";
            c.error(Some(name), p, msg);
        }
        if name.chars().count() > MAX_NAME {
            let msg = format!("state names are at most {MAX_NAME} characters");
            c.error(Some(name), p, msg);
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
    if !broken {
        paths(c, sc, states);
    }
}

/// StartAt names a state of the scope.
fn start_exists(
    c: &mut Checker,
    sc: &asl::Scope,
    states: &Map<String, Value>,
    did_you_mean: &dyn Fn(&str) -> String,
) -> bool {
    let at = format!("{}/StartAt", sc.pointer);
    match sc.start_at {
        None => c.error(None, &at, "StartAt is required"),
        Some(s) if !states.contains_key(s) => {
            let msg = format!(
                "StartAt names `{s}`, which is not a state here{}",
                did_you_mean(s)
            );
            c.error(None, &at, msg)
        }
        _ => return true,
    }
    false
}

/// Every state is reachable from StartAt, and from every reachable one some path ends.
fn paths(c: &mut Checker, sc: &asl::Scope, states: &Map<String, Value>) {
    let base = sc.pointer.as_str();
    let seen = reachable(sc, states);
    for name in states.keys().filter(|n| !seen.contains(*n)) {
        c.error(
            Some(name),
            &format!("{base}/States/{}", esc(name)),
            "no path from StartAt reaches this state",
        );
    }
    let ends = ending(sc);
    for name in seen.iter().filter(|n| !ends.contains(*n)) {
        c.error(
            Some(name),
            &format!("{base}/States/{}", esc(name)),
            "no path from this state ever ends (a loop with no way out)",
        );
    }
}

/// The states reachable from StartAt.
fn reachable(sc: &asl::Scope, states: &Map<String, Value>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = sc
        .start_at
        .filter(|s| states.contains_key(*s))
        .map(|s| vec![s.to_string()])
        .unwrap_or_default();
    while let Some(n) = todo.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        if let Some(s) = sc.state(&n).filter(|s| s.raw.is_object()) {
            let next = s.transitions.iter().map(|t| t.to.to_string());
            todo.extend(next.filter(|t| states.contains_key(t)));
        }
    }
    seen
}

/// The states from which some terminal state is reachable: walked backwards from the
/// terminal states, each edge once (linear in the definition's size).
fn ending(sc: &asl::Scope) -> BTreeSet<String> {
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
    ends
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

#[cfg(test)]
mod tests;
