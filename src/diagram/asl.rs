//! A state machine definition (either query language) as a diagram: states as nodes,
//! Next / Default / Choice rules / Catch as labelled edges, Parallel branches and Map item
//! processors as clusters, and start and end marked.

use super::{Cluster, Diagram, EdgeKind, Shape};
use crate::asl;
use serde_json::Value;

pub const START: &str = "__start__";
pub const END: &str = "__end__";

pub fn from_definition(title: &str, def: &Value) -> Diagram {
    let mut d = Diagram {
        title: title.into(),
        ..Default::default()
    };
    d.add_node(START, "Start", Shape::Start, None);
    let machine = asl::Machine::parse(def);
    let start = machine.top.start_at.unwrap_or_default();
    let ends = add_scope(&mut d, &machine.top, None);
    d.add_node(END, "End", Shape::End, None);
    if !start.is_empty() {
        d.add_edge(START, start, "", EdgeKind::Next);
    }
    for t in ends {
        d.add_edge(&t, END, "", EdgeKind::Next);
    }
    d
}

fn shape_of(ty: &str) -> Shape {
    match ty {
        "Task" => Shape::Task,
        "Choice" => Shape::Choice,
        "Wait" => Shape::Wait,
        "Succeed" => Shape::Succeed,
        "Fail" => Shape::Fail,
        "Parallel" => Shape::Parallel,
        "Map" => Shape::Map,
        _ => Shape::Pass,
    }
}

fn short(s: &str, n: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// A readable label for a Choice rule: its JSONata condition, or the JSONPath comparison.
pub fn rule_label(rule: &Value) -> String {
    if let Some(c) = rule["Condition"].as_str() {
        let c = c.trim().trim_start_matches("{%").trim_end_matches("%}");
        return short(c, 160);
    }
    for (op, join) in [("And", " and "), ("Or", " or ")] {
        if let Some(items) = rule[op].as_array() {
            return short(
                &items.iter().map(rule_label).collect::<Vec<_>>().join(join),
                160,
            );
        }
    }
    if rule.get("Not").is_some() {
        return format!("not ({})", rule_label(&rule["Not"]));
    }
    let var = rule["Variable"].as_str().unwrap_or("?");
    let obj = rule.as_object();
    let cmp = obj.and_then(|m| m.iter().find(|(k, _)| *k != "Variable" && *k != "Next"));
    match cmp {
        Some((op, v)) => short(
            &format!(
                "{var} {op} {}",
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            ),
            160,
        ),
        None => var.to_string(),
    }
}

/// Adds the states of one scope; returns the states that end it.
/// One transition of state `st`: from the ends of its branches when it has any.
fn add_transition(d: &mut Diagram, st: &asl::State, t: &asl::Transition, inner_ends: &[String]) {
    let name = st.name;
    match t.via {
        asl::Via::Next if !inner_ends.is_empty() => {
            for end in inner_ends {
                d.add_edge(end, t.to, "", EdgeKind::Join);
            }
        }
        asl::Via::Next => d.add_edge(name, t.to, "", EdgeKind::Next),
        asl::Via::Rule(_) if st.kind == asl::Kind::Choice => {
            d.add_edge(name, t.to, &rule_label(t.raw), EdgeKind::Rule)
        }
        asl::Via::Default if st.kind == asl::Kind::Choice => {
            d.add_edge(name, t.to, "Default", EdgeKind::Default)
        }
        asl::Via::Catch(_) => {
            let errs: Vec<&str> = t.raw["ErrorEquals"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e.as_str())
                .collect();
            d.add_edge(
                name,
                t.to,
                &format!("catch {}", errs.join(", ")),
                EdgeKind::Catch,
            );
        }
        _ => {}
    }
}

fn add_scope(d: &mut Diagram, sc: &asl::Scope, cluster: Option<usize>) -> Vec<String> {
    let mut ends = Vec::new();
    for st in &sc.states {
        d.add_node(st.name, st.name, shape_of(st.kind.name()), cluster);
    }
    for st in &sc.states {
        let name = st.name;
        let mut inner_ends = Vec::new();
        for (i, inner) in st.scopes.iter().enumerate() {
            let (label, edge_label) = match st.kind {
                asl::Kind::Parallel => (
                    format!("{name} · branch {}", i + 1),
                    format!("branch {}", i + 1),
                ),
                _ => (format!("{name} · item processor"), "each item".to_string()),
            };
            d.clusters.push(Cluster {
                label,
                parent: cluster,
            });
            let c = d.clusters.len() - 1;
            inner_ends.extend(add_scope(d, inner, Some(c)));
            if let Some(start) = inner.start_at {
                d.add_edge(name, start, &edge_label, EdgeKind::Branch);
            }
        }
        let has_inner = !inner_ends.is_empty();
        for t in &st.transitions {
            add_transition(d, st, t, &inner_ends);
        }
        if st.terminal {
            if has_inner {
                ends.extend(inner_ends)
            } else {
                ends.push(name.to_string())
            }
        }
    }
    ends
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn definition(template: &str) -> Value {
        crate::template::published_for_tests(template)
    }

    fn edges(d: &Diagram) -> BTreeSet<(String, String, String)> {
        d.edges
            .iter()
            .map(|e| (e.from.clone(), e.to.clone(), e.label.clone()))
            .collect()
    }

    fn e(a: &str, b: &str, l: &str) -> (String, String, String) {
        (a.into(), b.into(), l.into())
    }

    fn nodes(d: &Diagram) -> BTreeSet<String> {
        d.nodes.iter().map(|n| n.id.clone()).collect()
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn should_i_deploy() {
        let d = from_definition("s", &definition("should-i-deploy/jsonata.json"));
        assert_eq!(
            nodes(&d),
            set(&[
                START,
                END,
                "Call Should I deploy API",
                "ListAttachedUserPolicies",
                "Should I Deploy?",
                "AttachUserPolicy",
                "DetachUserPolicy",
                "Success"
            ])
        );
        let want: BTreeSet<_> = [
            e(START, "Call Should I deploy API", ""),
            e("Call Should I deploy API", "ListAttachedUserPolicies", ""),
            e("ListAttachedUserPolicies", "Should I Deploy?", ""),
            e("Should I Deploy?", "AttachUserPolicy", "$deploy = false and $states.input.policyAttached = false"),
            e(
                "Should I Deploy?",
                "Success",
                "($deploy = false and $states.input.policyAttached = true) or ($deploy = true and $states.input.policyAttached = false)",
            ),
            e("Should I Deploy?", "DetachUserPolicy", "Default"),
            e("AttachUserPolicy", END, ""),
            e("DetachUserPolicy", END, ""),
            e("Success", END, ""),
        ]
        .into();
        assert_eq!(edges(&d), want);
        assert_eq!(d.node("Should I Deploy?").unwrap().shape, Shape::Choice);
    }

    #[test]
    fn create_new_user() {
        let d = from_definition("c", &definition("create-new-user/jsonata.json"));
        assert_eq!(
            nodes(&d),
            set(&[START, END, "SNS Publish", "CreateUser", "AddUserToGroup"])
        );
        let want: BTreeSet<_> = [
            e(START, "SNS Publish", ""),
            e("SNS Publish", "CreateUser", ""),
            e("CreateUser", "AddUserToGroup", ""),
            e("AddUserToGroup", END, ""),
        ]
        .into();
        assert_eq!(edges(&d), want);
    }

    #[test]
    fn bucket_replication_has_its_polling_loop() {
        let d = from_definition("b", &definition("bucket-replication/jsonata.json"));
        assert_eq!(
            nodes(&d),
            set(&[
                START,
                END,
                "StartTaskExecution",
                "Wait 10s",
                "DescribeTaskExecution",
                "Job Complete?",
                "Success",
                "Fail"
            ])
        );
        let want: BTreeSet<_> = [
            e(START, "StartTaskExecution", ""),
            e("StartTaskExecution", "Wait 10s", ""),
            e("Wait 10s", "DescribeTaskExecution", ""),
            e("DescribeTaskExecution", "Job Complete?", ""),
            e("Job Complete?", "Fail", "$states.input.Status = 'ERROR'"),
            e(
                "Job Complete?",
                "Success",
                "$states.input.Status = 'SUCCESS'",
            ),
            e("Job Complete?", "Wait 10s", "Default"),
            e("Success", END, ""),
            e("Fail", END, ""),
        ]
        .into();
        assert_eq!(edges(&d), want);
    }

    fn check_resize(lang: &str) {
        let d = from_definition("r", &definition(&format!("resize-image/{lang}.json")));
        assert_eq!(
            nodes(&d),
            set(&[
                START,
                END,
                "Map",
                "Resize Profile Picture",
                "Resize Profile Picture to Small",
                "Set Small Profile picture URI",
                "Resize Profile Picture to Big",
                "Set Big Profile picture URI",
                "Delete Uploaded Profile Picture"
            ])
        );
        let want: BTreeSet<_> = [
            e(START, "Map", ""),
            e("Map", "Resize Profile Picture", "each item"),
            e(
                "Resize Profile Picture",
                "Resize Profile Picture to Small",
                "branch 1",
            ),
            e(
                "Resize Profile Picture",
                "Resize Profile Picture to Big",
                "branch 2",
            ),
            e(
                "Resize Profile Picture to Small",
                "Set Small Profile picture URI",
                "",
            ),
            e(
                "Resize Profile Picture to Big",
                "Set Big Profile picture URI",
                "",
            ),
            e(
                "Set Small Profile picture URI",
                "Delete Uploaded Profile Picture",
                "",
            ),
            e(
                "Set Big Profile picture URI",
                "Delete Uploaded Profile Picture",
                "",
            ),
            e("Delete Uploaded Profile Picture", END, ""),
        ]
        .into();
        assert_eq!(edges(&d), want);
        let labels: Vec<&str> = d.clusters.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            labels,
            vec![
                "Map · item processor",
                "Resize Profile Picture · branch 1",
                "Resize Profile Picture · branch 2"
            ]
        );
        assert_eq!(
            d.clusters[1].parent,
            Some(0),
            "branches sit inside the item processor"
        );
        assert_eq!(
            d.node("Set Big Profile picture URI").unwrap().cluster,
            Some(2)
        );
    }

    #[test]
    fn resize_image_jsonata() {
        check_resize("jsonata");
    }

    #[test]
    fn resize_image_jsonpath() {
        check_resize("jsonpath");
    }

    #[test]
    fn catch_edges_and_jsonpath_rules_are_labelled() {
        let def: Value = serde_json::from_str(
            r#"{"StartAt": "T", "States": {
                "T": {"Type": "Task", "Resource": "x", "Next": "C", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "F"}]},
                "C": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThan": 3, "Next": "S"}], "Default": "F"},
                "S": {"Type": "Succeed"}, "F": {"Type": "Fail", "Error": "E"}}}"#,
        )
        .unwrap();
        let d = from_definition("t", &def);
        let es = edges(&d);
        assert!(es.contains(&e("T", "F", "catch States.ALL")), "{es:?}");
        assert!(
            es.contains(&e("C", "S", "$.n NumericGreaterThan 3")),
            "{es:?}"
        );
    }

    #[test]
    fn execution_marks_visited_and_failed_states() {
        let mut d = from_definition("b", &definition("bucket-replication/jsonata.json"));
        let entered: Vec<String> = [
            "StartTaskExecution",
            "Wait 10s",
            "DescribeTaskExecution",
            "Job Complete?",
            "Fail",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        d.mark_execution(&entered, Some("Fail"));
        assert_eq!(
            d.node("Wait 10s").unwrap().mark,
            Some(super::super::Mark::Visited)
        );
        assert_eq!(
            d.node("Fail").unwrap().mark,
            Some(super::super::Mark::Failed)
        );
        assert_eq!(d.node("Success").unwrap().mark, None);
        assert!(
            d.edges
                .iter()
                .any(|e| e.from == "Job Complete?" && e.to == "Fail" && e.taken)
        );
        assert!(
            !d.edges
                .iter()
                .any(|e| e.from == "Job Complete?" && e.to == "Success" && e.taken)
        );
    }
}
