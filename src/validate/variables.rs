//! Variables (`Assign`) read before every path has assigned them: a must-assigned dataflow
//! over each scope. Assignments take effect when a state is left, along the edge taken (a
//! Choice rule's or a catcher's own Assign on its edge); a Parallel branch or Map item
//! processor sees what was assigned before its container. Only JSONata expressions are read.

use super::expr;
use super::findings::{Checker, Severity, esc};
use crate::asl;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The variables a JSONata expression reads (not functions, not `$states`, not its own locals).
pub fn reads(expression: &str) -> BTreeSet<String> {
    // Blank out string literals so `'$x'` is not a read.
    let mut text = String::with_capacity(expression.len());
    let mut quote: Option<char> = None;
    for ch in expression.chars() {
        match quote {
            Some(q) if ch == q => {
                quote = None;
                text.push(' ');
            }
            Some(_) => text.push(' '),
            None if ch == '\'' || ch == '"' => {
                quote = Some(ch);
                text.push(' ');
            }
            None => text.push(ch),
        }
    }
    let var = regex::Regex::new(r"\$([A-Za-z_][A-Za-z0-9_]*)").unwrap();
    let local = regex::Regex::new(r"\$([A-Za-z_][A-Za-z0-9_]*)\s*:=").unwrap();
    let params = regex::Regex::new(r"function\s*\(([^)]*)\)").unwrap();
    let mut locals: BTreeSet<String> = local
        .captures_iter(&text)
        .map(|c| c[1].to_string())
        .collect();
    for p in params.captures_iter(&text) {
        locals.extend(var.captures_iter(&p[1]).map(|c| c[1].to_string()));
    }
    var.captures_iter(&text)
        .filter(|c| {
            let end = c.get(0).unwrap().end();
            !text[end..].trim_start().starts_with('(')
        })
        .map(|c| c[1].to_string())
        .filter(|n| n != "states" && !locals.contains(n))
        .collect()
}

fn assigned(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(|a| a.as_object())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Edges out of a state with what each assigns: a Choice rule's Next what the state and the
/// rule assign, a Catch's what the catcher assigns.
fn edges<'a>(s: &asl::State<'a>) -> Vec<(&'a str, BTreeSet<String>)> {
    let own = assigned(s.raw.get("Assign"));
    s.transitions
        .iter()
        .map(|t| {
            let a = match t.via {
                asl::Via::Next | asl::Via::Default => own.clone(),
                asl::Via::Rule(_) => own.union(&assigned(t.raw.get("Assign"))).cloned().collect(),
                asl::Via::Catch(_) => assigned(t.raw.get("Assign")),
            };
            (t.to, a)
        })
        .collect()
}

/// Every JSONata expression of a state outside its nested scopes: (pointer, expression).
fn expressions(v: &Value, p: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => {
            if let Some(e) = expr::jsonata_of(s) {
                out.push((p.to_string(), e.to_string()));
            }
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| expressions(v, &format!("{p}/{i}"), out)),
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "Branches" | "ItemProcessor" | "Iterator"))
            .for_each(|(k, v)| expressions(v, &format!("{p}/{}", esc(k)), out)),
        _ => {}
    }
}

pub fn check(c: &mut Checker, sc: &asl::Scope, outer: &BTreeSet<String>) {
    let Some(start) = sc.start_at.filter(|s| sc.state(s).is_some()) else {
        return;
    };
    let states: Vec<&asl::State> = sc.states.iter().filter(|s| s.raw.is_object()).collect();
    let inn = must_assigned(sc, start, &states, outer);
    for st in states {
        let (name, p) = (st.name, &st.pointer);
        let known = &inn[name];
        if st.jsonata() {
            let mut found = Vec::new();
            expressions(st.raw, p, &mut found);
            let mut said = BTreeSet::new();
            for (ptr, e) in found {
                for v in reads(&e) {
                    if !known.contains(&v) && said.insert(v.clone()) {
                        c.add(
                            Severity::Warning,
                            Some(name),
                            &ptr,
                            format!(
                                "${v} is read here, but not every path to this state assigns it"
                            ),
                        );
                    }
                }
            }
        }
        for inner in &st.scopes {
            check(c, inner, known);
        }
    }
}

/// For each state, the variables that every path from StartAt to it assigns (`outer`: those
/// the enclosing scope has): a worklist from StartAt, where a state is looked at again only when
/// what reaches it changed, so a chain of states converges in one pass (linear, not quadratic,
/// in its length).
fn must_assigned<'s>(
    sc: &'s asl::Scope,
    start: &'s str,
    states: &[&asl::State],
    outer: &BTreeSet<String>,
) -> BTreeMap<&'s str, BTreeSet<String>> {
    let universe: BTreeSet<String> = states
        .iter()
        .flat_map(|s| edges(s).into_iter().flat_map(|(_, a)| a))
        .chain(outer.iter().cloned())
        .collect();
    let mut inn: BTreeMap<&str, BTreeSet<String>> = sc
        .states
        .iter()
        .map(|s| (s.name, universe.clone()))
        .collect();
    inn.insert(start, outer.clone());
    let mut todo: std::collections::VecDeque<&str> = std::collections::VecDeque::from([start]);
    let mut queued: BTreeSet<&str> = BTreeSet::from([start]);
    while let Some(name) = todo.pop_front() {
        queued.remove(name);
        let Some(s) = sc.state(name).filter(|s| s.raw.is_object()) else {
            continue;
        };
        let here = inn[name].clone();
        for (t, a) in edges(s) {
            let Some(key) = sc.state(t).map(|s| s.name) else {
                continue;
            };
            let cur = &inn[key];
            if t == start {
                continue;
            }
            let via: BTreeSet<String> = here.union(&a).cloned().collect();
            let met: BTreeSet<String> = cur.intersection(&via).cloned().collect();
            if &met != cur {
                inn.insert(key, met);
                if queued.insert(key) {
                    todo.push_back(key);
                }
            }
        }
    }
    inn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_skip_functions_locals_strings_and_states() {
        let r = reads(
            "$count($items) > 0 and $deploy = 'x $nope' and ($y := 1; $y) and $states.input.a and function($p){ $p }",
        );
        assert_eq!(
            r,
            BTreeSet::from(["items".to_string(), "deploy".to_string()])
        );
    }
}
