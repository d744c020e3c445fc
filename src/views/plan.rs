//! A plan as people read it (text, in colour on a terminal) and as a pull request comment
//! (Markdown): creates list what they will make, policies statement by statement; updates show
//! each changed value by its path, definitions state by state
//! (`state "Check API" · Retry[0].MaxAttempts: 3 → 5`); drift says "changed outside deploy".

use crate::options::Format;
use crate::output::{paint, style};
use crate::plan::Summary;
use crate::plan::{Action, AttrChange, Plan, Step};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Longest compact JSON shown on one line; longer values are shown pretty, line by line.
const INLINE: usize = 100;

fn action_style(a: Action) -> anstyle::Style {
    match a {
        Action::Create => style::ADD,
        Action::Update => style::CHANGE,
        Action::Replace | Action::Delete => style::REMOVE,
        Action::Adopt | Action::Forget => style::ADOPT,
        Action::NoOp => style::DIM,
    }
}

/// Plans, before anything is changed: text for people, one JSON document for CI, Markdown
/// for a pull request.
pub fn plans(plans: &[&Plan], format: Format) {
    match format {
        Format::Text => {
            for p in plans {
                outp!("{}", render_text(p, crate::output::color_stdout()));
            }
        }
        Format::Json => {
            let doc = json!({"event": "plan", "plans": plans});
            outln!("{}", super::json_doc(doc));
        }
        Format::Markdown => {
            for p in plans {
                outln!("{}", render_markdown(p));
            }
        }
    }
}

/// What an apply did, and the stack's outputs (secrets masked).
pub fn applied(s: &Summary, outputs: &BTreeMap<String, Value>, format: Format) {
    let changes = crate::output::plural(s.done.len(), "change");
    match format {
        Format::Text => {
            outln!("{}: {changes} applied (env {}).", s.stack, s.env);
            for (k, v) in outputs {
                outln!("  {k} = {}", super::info::shown(v));
            }
        }
        Format::Json => {
            let outputs =
                crate::secrets::mask(&serde_json::to_value(outputs).unwrap_or_default(), &[], &[]);
            outln!(
                "{}",
                super::json_doc(json!({"event": "summary", "summary": s, "outputs": outputs}))
            );
        }
        Format::Markdown => {
            outln!("**`{}` (env `{}`): {changes} applied.**\n", s.stack, s.env);
            outp!("{}", super::info::outputs_markdown(outputs));
        }
    }
}

pub fn render_text(plan: &Plan, color: bool) -> String {
    let head = format!(
        "stack {} (env {}){}",
        plan.stack,
        plan.env,
        if plan.destroy { ": destroy" } else { "" }
    );
    let mut out = paint(color, style::BOLD, head) + "\n";
    for w in &plan.warnings {
        out += &format!("  {}: {w}\n", paint(color, style::WARN, "warning"));
    }
    if let Some(part) = &plan.partial {
        out += &partial_lines(part, &plan.left_out, color);
    }
    for s in plan
        .steps
        .iter()
        .filter(|s| s.action != Action::NoOp || s.moved_from.is_some())
    {
        let (symbol, verb) = match (s.action, &s.moved_from) {
            (Action::NoOp, Some(_)) => ("~>", "moved"),
            (a, _) => (a.symbol(), a.verb()),
        };
        out += &format!(
            "  {} {}.{}  {}\n",
            paint(
                color,
                action_style(s.action),
                format!("{symbol:<3} {verb:<8}")
            ),
            s.kind,
            paint(color, style::BOLD, &s.id),
            s.name
        );
        if let Some(from) = &s.moved_from {
            let line = format!("(moved from {from}: its record is renamed, nothing in AWS is)");
            out += &format!("      {}\n", paint(color, style::DIM, line));
        }
        if let Some(r) = &s.reason {
            out += &format!("      {}\n", paint(color, style::DIM, format!("({r})")));
        }
        if let Some(attrs) = &s.attributes {
            for line in attribute_lines(attrs) {
                out += &format!("      {} {line}\n", paint(color, style::ADD, "+"));
            }
        }
        for c in &s.changes {
            change_lines(c, color, &mut out);
        }
        transition_lines(&s.transitions, color, &mut out);
        if let (Some(r), Action::Update) = (&s.rollout, s.action) {
            let line = format!("# rollout to the new version: {r}");
            out += &format!("      {}\n", paint(color, style::DIM, line));
        }
    }
    out += &tally(plan);
    out
}

/// A partial plan says so first: the part, and each change it leaves out.
fn partial_lines(part: &crate::refactor::Part, left_out: &[String], color: bool) -> String {
    let mut said = Vec::new();
    if !part.targets.is_empty() {
        said.push(format!("--target {}", part.targets.join(", ")));
    }
    if !part.excludes.is_empty() {
        said.push(format!("--exclude {}", part.excludes.join(", ")));
    }
    let mut out = format!(
        "  {}: partial plan ({}): {}\n",
        paint(color, style::WARN, "note"),
        said.join("; "),
        match left_out.len() {
            0 => "it leaves no change out".to_string(),
            n => format!("it leaves out {}", crate::output::plural(n, "change")),
        }
    );
    for l in left_out {
        out += &format!(
            "      {}\n",
            paint(color, style::DIM, format!("left out: {l}"))
        );
    }
    out
}

/// The plan's last line: how many of each change, or that there is none.
fn tally(plan: &Plan) -> String {
    let c = plan.counts();
    if !plan.has_changes() {
        return format!("No changes: {} resources up to date.\n", c.unchanged);
    }
    let some = |n: usize, what: &str| match n {
        0 => String::new(),
        n => format!("{n} {what}, "),
    };
    format!(
        "Plan: {} to create, {}{} to update, {} to replace, {} to delete, {}{}{} unchanged.\n",
        c.create,
        some(c.adopt, "to adopt"),
        c.update,
        c.replace,
        c.delete,
        some(c.forget, "to forget"),
        some(c.moved, "moved"),
        c.unchanged
    )
}

/// The plan as Markdown, for a pull request comment or `$GITHUB_STEP_SUMMARY`: a heading, a
/// table of what changes, the counts, and the attribute diffs folded away.
pub fn render_markdown(plan: &Plan) -> String {
    let verb = if plan.destroy { "destroy" } else { "plan" };
    let mut out = format!(
        "### deploy {verb}: `{}` (env `{}`)\n\n",
        plan.stack, plan.env
    );
    let changing: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| s.action != Action::NoOp)
        .collect();
    let c = plan.counts();
    if changing.is_empty() {
        out += &format!("No changes: {} resources up to date.\n", c.unchanged);
        return out;
    }
    out += "| action | resource | kind | name |\n|---|---|---|---|\n";
    for s in &changing {
        out += &format!(
            "| {} {} | `{}` | {} | `{}` |\n",
            s.action.symbol(),
            s.action.verb(),
            s.id,
            s.kind,
            s.name.replace('|', "\\|")
        );
    }
    out += &format!(
        "\n**{} to create, {} to adopt, {} to update, {} to replace, {} to delete**, {} unchanged.\n",
        c.create, c.adopt, c.update, c.replace, c.delete, c.unchanged
    );
    let mut details = String::new();
    for s in changing.iter().filter(|s| !s.changes.is_empty()) {
        details += &format!("# {}.{}\n", s.kind, s.id);
        for ch in &s.changes {
            change_lines(ch, false, &mut details);
        }
    }
    if !details.is_empty() {
        out += &format!(
            "\n<details><summary>What changes</summary>\n\n```diff\n{details}```\n\n</details>\n"
        );
    }
    out
}

// ---------- creates: what will be made ----------

/// What a definition change does to the cost of each scenario's path.
fn transition_lines(t: &[crate::plan::ScenarioTransitions], color: bool, out: &mut String) {
    let (changed, same): (Vec<_>, Vec<_>) = t.iter().partition(|t| t.before != t.after);
    for t in &changed {
        let line = format!(
            "# scenario {}: {} → {} transitions per execution",
            t.scenario, t.before, t.after
        );
        *out += &format!("      {}\n", paint(color, style::DIM, line));
    }
    if !same.is_empty() && !changed.is_empty() {
        let line = format!("# {} other scenario(s): transitions unchanged", same.len());
        *out += &format!("      {}\n", paint(color, style::DIM, line));
    } else if !same.is_empty() {
        let line = format!("# every scenario ({}): transitions unchanged", same.len());
        *out += &format!("      {}\n", paint(color, style::DIM, line));
    }
}

/// One line per attribute of a resource to create: policies statement by statement, a
/// definition by its states, everything else as compact JSON.
fn attribute_lines(attrs: &Value) -> Vec<String> {
    let Some(obj) = attrs.as_object() else {
        return vec![];
    };
    let empty = |v: &Value| {
        v.is_null()
            || v.as_str() == Some("")
            || v.as_object().is_some_and(|o| o.is_empty())
            || v.as_array().is_some_and(|a| a.is_empty())
    };
    let shown: Vec<(&String, &Value)> = obj.iter().filter(|(_, v)| !empty(v)).collect();
    let width = shown.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = Vec::new();
    for (k, v) in shown {
        if let Some(statements) = v.as_array().filter(|a| a.iter().all(is_statement)) {
            for st in statements {
                out.push(format!("{k:<width$} {}", statement(st)));
            }
            continue;
        }
        if k == "definition" {
            if let Some(states) = v.get("States").and_then(Value::as_object) {
                let names: Vec<String> = states.keys().map(|n| format!("{n:?}")).collect();
                out.push(format!(
                    "{k:<width$} = {} states: {}",
                    names.len(),
                    names.join(", ")
                ));
                continue;
            }
        }
        out.push(format!("{k:<width$} = {}", compact(v)));
    }
    out
}

fn is_statement(v: &Value) -> bool {
    v.get("Effect").is_some()
}

/// `"Sid": Allow iam:AttachUserPolicy, iam:DetachUserPolicy on arn:...` (and who, and when).
fn statement(st: &Value) -> String {
    let list = |k: &str| match st.get(k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Some(other) => Some(compact(other)),
        None => None,
    };
    let mut s = String::new();
    if let Some(sid) = st.get("Sid").and_then(Value::as_str) {
        s += &format!("{sid:?}: ");
    }
    s += st.get("Effect").and_then(Value::as_str).unwrap_or("?");
    if let Some(p) = st.get("Principal").or_else(|| st.get("NotPrincipal")) {
        s += &format!(" to {}", compact(p));
    }
    match (list("Action"), list("NotAction")) {
        (Some(a), _) => s += &format!(" {a}"),
        (None, Some(a)) => s += &format!(" all but {a}"),
        _ => {}
    }
    match (list("Resource"), list("NotResource")) {
        (Some(r), _) => s += &format!(" on {r}"),
        (None, Some(r)) => s += &format!(" on all but {r}"),
        _ => {}
    }
    if let Some(c) = st.get("Condition") {
        s += &format!(" when {}", compact(c));
    }
    s
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

// ---------- updates: what changes, by path ----------

/// One changed value: where (a path inside the attribute) and from what to what.
#[derive(Debug, PartialEq)]
struct Leaf {
    path: String,
    old: Option<Value>,
    new: Option<Value>,
}

/// The changed values between `old` and `new`, walked down to the smallest part that differs
/// (an array of plain values counts as one value).
fn leaves(old: Option<&Value>, new: Option<&Value>, path: &mut Vec<String>, out: &mut Vec<Leaf>) {
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys.into_iter().filter(|k| a.get(*k) != b.get(*k)) {
                path.push(k.clone());
                leaves(a.get(k), b.get(k), path, out);
                path.pop();
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b)))
            if a.iter().chain(b).any(|v| v.is_object() || v.is_array()) =>
        {
            for i in 0..a.len().max(b.len()) {
                if a.get(i) != b.get(i) {
                    let label = label_of(a.get(i).or(b.get(i))).unwrap_or_else(|| format!("[{i}]"));
                    path.push(label);
                    leaves(a.get(i), b.get(i), path, out);
                    path.pop();
                }
            }
        }
        (o, n) if o != n => out.push(Leaf {
            path: show_path(path),
            old: o.cloned(),
            new: n.cloned(),
        }),
        _ => {}
    }
}

/// An array element named by what people call it: a policy statement by its Sid.
fn label_of(v: Option<&Value>) -> Option<String> {
    v?.get("Sid")?.as_str().map(|sid| format!("[Sid {sid:?}]"))
}

/// `States/Check API/Retry/[0]/MaxAttempts` → `state "Check API" · Retry[0].MaxAttempts`
/// (the innermost state, for states inside Map and Parallel).
fn show_path(path: &[String]) -> String {
    let mut state = None;
    let mut rest: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < path.len() {
        if path[i] == "States" && i + 1 < path.len() {
            state = Some(&path[i + 1]);
            rest.clear();
            i += 2;
            continue;
        }
        rest.push(&path[i]);
        i += 1;
    }
    let mut tail = String::new();
    for seg in rest {
        if seg.starts_with('[') {
            tail += seg;
        } else {
            if !tail.is_empty() {
                tail.push('.');
            }
            tail += seg;
        }
    }
    match (state, tail.is_empty()) {
        (Some(s), true) => format!("state {s:?}"),
        (Some(s), false) => format!("state {s:?} · {tail}"),
        (None, _) => tail,
    }
}

fn change_lines(c: &AttrChange, color: bool, out: &mut String) {
    let mut notes = Vec::new();
    if c.forces_replacement {
        notes.push(if c.known_after_apply {
            "forces replacement if it differs (checked when known)"
        } else {
            "forces replacement"
        });
    } else if c.known_after_apply {
        notes.push("checked again when known");
    }
    if c.changed_outside {
        notes.push("changed outside deploy");
    }
    let note = if notes.is_empty() {
        String::new()
    } else {
        paint(color, style::DIM, format!("  # {}", notes.join("; ")))
    };
    let sign = |old: &Option<Value>, new: &Option<Value>| match (old, new) {
        (None, Some(_)) => paint(color, style::ADD, "+"),
        (Some(_), None) => paint(color, style::REMOVE, "-"),
        _ => paint(color, style::CHANGE, "~"),
    };
    let mut found = Vec::new();
    leaves(c.old.as_ref(), c.new.as_ref(), &mut vec![], &mut found);
    let scalar = |v: &Option<Value>| v.as_ref().is_none_or(|v| !v.is_object() && !v.is_array());
    if scalar(&c.old) && scalar(&c.new) || found.len() == 1 && found[0].path.is_empty() {
        *out += &format!(
            "      {} {}: {}{note}\n",
            sign(&c.old, &c.new),
            c.attr,
            values(&c.old, &c.new, color, 8)
        );
        return;
    }
    *out += &format!("      {} {}:{note}\n", sign(&c.old, &c.new), c.attr);
    for leaf in found {
        *out += &format!(
            "          {} {}: {}\n",
            sign(&leaf.old, &leaf.new),
            leaf.path,
            values(&leaf.old, &leaf.new, color, 12)
        );
    }
}

/// `old → new`, `(none) → new`, or, for long values, one pretty line after another.
fn values(old: &Option<Value>, new: &Option<Value>, color: bool, indent: usize) -> String {
    let show = |v: &Option<Value>| v.as_ref().map(compact).unwrap_or_else(|| "(none)".into());
    let (o, n) = (show(old), show(new));
    if o.len() + n.len() <= INLINE {
        return format!(
            "{} → {}",
            paint(color, style::REMOVE, o),
            paint(color, style::ADD, n)
        );
    }
    let pad = " ".repeat(indent);
    let mut s = String::new();
    let lines = |v: &Option<Value>| {
        v.as_ref()
            .map(|v| serde_json::to_string_pretty(v).unwrap_or_default())
            .unwrap_or_default()
    };
    let (o, n) = (lines(old), lines(new));
    for change in similar::TextDiff::from_lines(&o, &n).iter_all_changes() {
        let (sign, st) = match change.tag() {
            similar::ChangeTag::Delete => ("-", style::REMOVE),
            similar::ChangeTag::Insert => ("+", style::ADD),
            similar::ChangeTag::Equal => (" ", style::DIM),
        };
        s += &format!(
            "\n{pad}{}",
            paint(
                color,
                st,
                format!("{sign} {}", change.to_string().trim_end_matches('\n'))
            )
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan_with(changes: Vec<AttrChange>, action: Action, attributes: Option<Value>) -> Plan {
        Plan {
            stack: "s".into(),
            env: "default".into(),
            destroy: false,
            steps: vec![Step {
                id: "m".into(),
                kind: "sfn_state_machine".into(),
                name: "m".into(),
                action,
                reason: None,
                changes,
                attributes,
                live: None,
                found: None,
                transitions: vec![],
                rollout: None,
                moved_from: None,
            }],
            warnings: vec![],
            partial: None,
            left_out: vec![],
        }
    }

    fn change(attr: &str, old: Value, new: Value) -> AttrChange {
        AttrChange {
            attr: attr.into(),
            old: Some(old),
            new: Some(new),
            forces_replacement: false,
            known_after_apply: false,
            changed_outside: false,
        }
    }

    #[test]
    fn a_definition_change_names_the_state_and_the_field() {
        let old = json!({"StartAt": "Check API", "States": {
            "Check API": {"Type": "Task", "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 3}], "Next": "Map"},
            "Map": {"Type": "Map", "ItemProcessor": {"StartAt": "Resize", "States": {"Resize": {"Type": "Pass", "End": true}}}, "End": true}}});
        let mut new = old.clone();
        new["States"]["Check API"]["Retry"][0]["MaxAttempts"] = json!(5);
        new["States"]["Map"]["ItemProcessor"]["States"]["Resize"]["Result"] = json!({"size": 200});
        new["States"]["Added"] = json!({"Type": "Succeed"});
        let t = render_text(
            &plan_with(vec![change("definition", old, new)], Action::Update, None),
            false,
        );
        let want = "      ~ definition:\n\
                    \x20         + state \"Added\": (none) → {\"Type\":\"Succeed\"}\n\
                    \x20         ~ state \"Check API\" · Retry[0].MaxAttempts: 3 → 5\n\
                    \x20         + state \"Resize\" · Result: (none) → {\"size\":200}\n";
        assert!(t.contains(want), "{t}");
        assert!(t.contains("~   update   sfn_state_machine.m"), "{t}");
        assert!(t.contains("Plan: 0 to create, 1 to update"), "{t}");
    }

    #[test]
    fn creates_list_their_attributes_and_policies_statement_by_statement() {
        let attrs = json!({"name": "p", "statement": [
            {"Sid": "IAMActions", "Effect": "Allow", "Action": ["iam:AttachUserPolicy", "iam:DetachUserPolicy"], "Resource": "(known after apply: user.arn)"},
            {"Effect": "Allow", "Action": "states:InvokeHTTPEndpoint", "Resource": "*"}], "tags": {"Project": "x"}, "path": ""});
        let t = render_text(&plan_with(vec![], Action::Create, Some(attrs)), false);
        let want = "      + name      = \"p\"\n\
                    \x20     + statement \"IAMActions\": Allow iam:AttachUserPolicy, iam:DetachUserPolicy on (known after apply: user.arn)\n\
                    \x20     + statement Allow states:InvokeHTTPEndpoint on *\n\
                    \x20     + tags      = {\"Project\":\"x\"}\n";
        assert!(t.contains(want), "{t}");
    }

    #[test]
    fn statements_by_sid_drift_and_scalars() {
        let old =
            json!([{"Sid": "A", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}]);
        let new = json!([{"Sid": "A", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "*"}]);
        let mut drift = change("visibility_timeout_seconds", json!(60), json!(30));
        drift.changed_outside = true;
        let t = render_text(
            &plan_with(
                vec![change("statement", old, new), drift],
                Action::Update,
                None,
            ),
            false,
        );
        assert!(t.contains("          ~ [Sid \"A\"].Action: [\"s3:GetObject\"] → [\"s3:GetObject\",\"s3:PutObject\"]\n"), "{t}");
        assert!(
            t.contains("      ~ visibility_timeout_seconds: 60 → 30  # changed outside deploy\n"),
            "{t}"
        );
        let p = plan_with(vec![], Action::NoOp, None);
        assert!(render_text(&p, false).contains("No changes: 1 resources up to date."));
    }

    #[test]
    fn colour_only_when_asked() {
        let p = plan_with(
            vec![change(
                "schedule_expression",
                json!("rate(30 minutes)"),
                json!("rate(5 minutes)"),
            )],
            Action::Update,
            None,
        );
        assert!(!render_text(&p, false).contains('\x1b'));
        let coloured = render_text(&p, true);
        assert!(
            coloured.contains("\x1b[33m~   update  \x1b[0m"),
            "{coloured:?}"
        );
    }
}
