//! Variables (`Assign`) read before every path has assigned them: a must-assigned dataflow
//! over each scope. Assignments take effect when a state is left, along the edge taken (a
//! Choice rule's or a catcher's own Assign on its edge); a Parallel branch or Map item
//! processor sees what was assigned before its container. Only JSONata expressions are read.

use super::{Checker, Severity, esc, expr};
use serde_json::{Map, Value};
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

/// Edges out of a state with what each assigns.
fn edges(s: &Map<String, Value>) -> Vec<(String, BTreeSet<String>)> {
    let own = assigned(s.get("Assign"));
    let mut out = Vec::new();
    for key in ["Next", "Default"] {
        if let Some(t) = s.get(key).and_then(|v| v.as_str()) {
            out.push((t.to_string(), own.clone()));
        }
    }
    for r in s
        .get("Choices")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(t) = r.get("Next").and_then(|v| v.as_str()) {
            out.push((
                t.to_string(),
                own.union(&assigned(r.get("Assign"))).cloned().collect(),
            ));
        }
    }
    for r in s
        .get("Catch")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(t) = r.get("Next").and_then(|v| v.as_str()) {
            out.push((t.to_string(), assigned(r.get("Assign"))));
        }
    }
    out
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

pub fn check(
    c: &mut Checker,
    body: &Map<String, Value>,
    base: &str,
    machine_lang: &str,
    outer: &BTreeSet<String>,
) {
    let Some(states) = body.get("States").and_then(|v| v.as_object()) else {
        return;
    };
    let Some(start) = body
        .get("StartAt")
        .and_then(|v| v.as_str())
        .filter(|s| states.contains_key(*s))
    else {
        return;
    };
    let universe: BTreeSet<String> = states
        .values()
        .filter_map(|s| s.as_object())
        .flat_map(|s| edges(s).into_iter().flat_map(|(_, a)| a))
        .chain(outer.iter().cloned())
        .collect();
    let mut inn: BTreeMap<&str, BTreeSet<String>> = states
        .keys()
        .map(|k| (k.as_str(), universe.clone()))
        .collect();
    inn.insert(start, outer.clone());
    // A worklist from StartAt: a state is looked at again only when what reaches it changed,
    // so a chain of states converges in one pass (linear, not quadratic, in its length).
    let mut todo: std::collections::VecDeque<&str> = std::collections::VecDeque::from([start]);
    let mut queued: BTreeSet<&str> = BTreeSet::from([start]);
    while let Some(name) = todo.pop_front() {
        queued.remove(name);
        let Some(s) = states.get(name).and_then(|s| s.as_object()) else {
            continue;
        };
        let here = inn[name].clone();
        for (t, a) in edges(s) {
            let Some((key, _)) = states.get_key_value(&t) else {
                continue;
            };
            let cur = &inn[key.as_str()];
            if t == start {
                continue;
            }
            let via: BTreeSet<String> = here.union(&a).cloned().collect();
            let met: BTreeSet<String> = cur.intersection(&via).cloned().collect();
            if &met != cur {
                inn.insert(key.as_str(), met);
                if queued.insert(key.as_str()) {
                    todo.push_back(key.as_str());
                }
            }
        }
    }
    for (name, s) in states {
        let Some(s) = s.as_object() else { continue };
        let p = format!("{base}/States/{}", esc(name));
        let lang = s
            .get("QueryLanguage")
            .and_then(|v| v.as_str())
            .unwrap_or(machine_lang);
        let known = &inn[name.as_str()];
        if lang == "JSONata" {
            let mut found = Vec::new();
            expressions(&Value::Object(s.clone()), &p, &mut found);
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
        for (i, b) in s
            .get("Branches")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(b) = b.as_object() {
                check(c, b, &format!("{p}/Branches/{i}"), lang, known);
            }
        }
        for key in ["ItemProcessor", "Iterator"] {
            if let Some(b) = s.get(key).and_then(|v| v.as_object()) {
                check(c, b, &format!("{p}/{key}"), lang, known);
            }
        }
    }
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
