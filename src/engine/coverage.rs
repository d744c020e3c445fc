//! Which paths of a definition a set of executions took: every state (those inside Parallel
//! branches and Map item processors included), every Choice rule and Default, every retrier
//! and catcher, each with the executions (scenarios) that reached it. What `deploy test
//! --coverage` reports and `deploy graph --coverage` draws.

use super::{Execution, Reached};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum What {
    State,
    Rule,
    Default,
    Retry,
    Catch,
}

/// One thing that can be reached.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub state: String,
    pub what: What,
    /// The rule's, retrier's or catcher's place in its list (0 for a state or a Default).
    pub index: usize,
    /// Where it leads (a rule's, Default's or catcher's Next).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    pub label: String,
    /// The executions that reached it, by name.
    pub by: Vec<String>,
}

impl Item {
    pub fn covered(&self) -> bool {
        !self.by.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    pub covered: usize,
    pub total: usize,
    pub percent: f64,
    pub items: Vec<Item>,
}

impl Coverage {
    /// The coverage of `definition` by `runs` (name, execution).
    pub fn of(definition: &Value, runs: &[(&str, &Execution)]) -> Coverage {
        let mut items = Vec::new();
        list(definition, &mut items);
        for item in &mut items {
            let wanted = match item.what {
                What::State => None,
                What::Rule => Some(Reached::Rule(item.state.clone(), item.index)),
                What::Default => Some(Reached::Default(item.state.clone())),
                What::Retry => Some(Reached::Retry(item.state.clone(), item.index)),
                What::Catch => Some(Reached::Catch(item.state.clone(), item.index)),
            };
            for (name, exec) in runs {
                let reached = match &wanted {
                    None => exec.path.contains(&item.state),
                    Some(r) => exec.reached.contains(r),
                };
                if reached && !item.by.iter().any(|b| b == name) {
                    item.by.push(name.to_string());
                }
            }
        }
        Coverage::from_items(items)
    }

    pub fn from_items(items: Vec<Item>) -> Coverage {
        let covered = items.iter().filter(|i| i.covered()).count();
        let total = items.len();
        let percent = if total == 0 {
            100.0
        } else {
            (covered as f64 * 1000.0 / total as f64).round() / 10.0
        };
        Coverage {
            covered,
            total,
            percent,
            items,
        }
    }
}

/// Every state of a definition's `States`, in order, with its rules, retriers and catchers;
/// then those inside its branches and item processor.
fn list(definition: &Value, out: &mut Vec<Item>) {
    let Some(states) = definition["States"].as_object() else {
        return;
    };
    for (name, s) in states {
        let item = |what, index, next: Option<&Value>, label: String| Item {
            state: name.clone(),
            what,
            index,
            next: next.and_then(|n| n.as_str()).map(str::to_string),
            label,
            by: vec![],
        };
        let ty = s["Type"].as_str().unwrap_or("?");
        out.push(item(What::State, 0, None, format!("{name} ({ty})")));
        for (i, r) in array(&s["Choices"]).iter().enumerate() {
            let to = r["Next"].as_str().unwrap_or("?");
            let label = format!("{name}: rule {} → {to}", i + 1);
            out.push(item(What::Rule, i, r.get("Next"), label));
        }
        if let Some(d) = s.get("Default") {
            let label = format!("{name}: Default → {}", d.as_str().unwrap_or("?"));
            out.push(item(What::Default, 0, Some(d), label));
        }
        for (i, r) in array(&s["Retry"]).iter().enumerate() {
            let label = format!("{name}: Retry {} {}", i + 1, errors(r));
            out.push(item(What::Retry, i, None, label));
        }
        for (i, c) in array(&s["Catch"]).iter().enumerate() {
            let to = c["Next"].as_str().unwrap_or("?");
            let label = format!("{name}: Catch {} {} → {to}", i + 1, errors(c));
            out.push(item(What::Catch, i, c.get("Next"), label));
        }
        for b in array(&s["Branches"]) {
            list(&b, out);
        }
        for inner in [&s["ItemProcessor"], &s["Iterator"]] {
            list(inner, out);
        }
    }
}

fn array(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

fn errors(r: &Value) -> String {
    let list: Vec<String> = array(&r["ErrorEquals"])
        .iter()
        .filter_map(|e| e.as_str().map(str::to_string))
        .collect();
    format!("[{}]", list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Status, execute_virtual, scenario::Mocked};
    use serde_json::json;

    fn definition() -> Value {
        json!({"StartAt": "Pick", "States": {
            "Pick": {"Type": "Choice", "Choices": [
                {"Variable": "$.n", "NumericEquals": 1, "Next": "Call"},
                {"Variable": "$.n", "NumericEquals": 2, "Next": "Both"}], "Default": "Done"},
            "Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Next": "Done",
                     "Retry": [{"ErrorEquals": ["Flaky"], "MaxAttempts": 1, "IntervalSeconds": 1}],
                     "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}]},
            "Both": {"Type": "Parallel", "Next": "Done", "Branches": [
                {"StartAt": "Inner", "States": {"Inner": {"Type": "Pass", "End": true}}}]},
            "Done": {"Type": "Succeed"}}})
    }

    fn run(input: Value, mocks: Value) -> Execution {
        let tasks = Mocked::new(serde_json::from_value(mocks).unwrap());
        execute_virtual(&definition(), input, "t", &tasks)
    }

    #[test]
    fn rules_defaults_retries_and_catches_are_counted_by_who_reached_them() {
        let flaky = json!({"Call": [{"Throw": {"Error": "Flaky", "Cause": "once"}}, {"Throw": {"Error": "Broken", "Cause": "twice"}}]});
        let caught = run(json!({"n": 1}), flaky);
        assert_eq!(caught.status, Status::Succeeded, "{:?}", caught.events);
        let default = run(json!({"n": 9}), json!({}));
        let runs = [("caught", &caught), ("default", &default)];
        let c = Coverage::of(&definition(), &runs);
        let by = |label: &str| {
            let item = c.items.iter().find(|i| i.label == label).unwrap();
            item.by.clone()
        };
        assert_eq!(by("Pick: rule 1 → Call"), ["caught"]);
        assert!(by("Pick: rule 2 → Both").is_empty());
        assert_eq!(by("Pick: Default → Done"), ["default"]);
        assert_eq!(by("Call: Retry 1 [Flaky]"), ["caught"]);
        assert_eq!(by("Call: Catch 1 [States.ALL] → Done"), ["caught"]);
        assert_eq!(by("Done (Succeed)"), ["caught", "default"]);
        assert!(
            by("Inner (Pass)").is_empty(),
            "a branch's states are listed"
        );
        // of five states, two rules, a Default, a retrier and a catcher: not rule 2, Both, Inner
        assert_eq!((c.covered, c.total), (7, 10));
        assert_eq!(c.percent, 70.0);
    }
}
