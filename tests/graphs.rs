//! `deploy graph` for the five published definitions, in DOT, Mermaid and SVG, and for a stack's
//! resources. No AWS is needed: references are drawn as "(known after apply)".

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use support::*;

/// (stack, extra args, every state name, a few edges as `from -> to`)
fn published() -> Vec<(&'static str, Vec<&'static str>, Vec<&'static str>, Vec<(&'static str, &'static str)>)> {
    let resize_states = vec![
        "Map",
        "Resize Profile Picture",
        "Resize Profile Picture to Small",
        "Set Small Profile picture URI",
        "Resize Profile Picture to Big",
        "Set Big Profile picture URI",
        "Delete Uploaded Profile Picture",
    ];
    let resize_edges = vec![
        ("Map", "Resize Profile Picture"),
        ("Resize Profile Picture", "Resize Profile Picture to Small"),
        ("Resize Profile Picture", "Resize Profile Picture to Big"),
        ("Set Small Profile picture URI", "Delete Uploaded Profile Picture"),
        ("Set Big Profile picture URI", "Delete Uploaded Profile Picture"),
    ];
    vec![
        (
            "should-i-deploy",
            vec![],
            vec![
                "Call Should I deploy API",
                "ListAttachedUserPolicies",
                "Should I Deploy?",
                "AttachUserPolicy",
                "DetachUserPolicy",
                "Success",
            ],
            vec![("Should I Deploy?", "AttachUserPolicy"), ("Should I Deploy?", "DetachUserPolicy"), ("Should I Deploy?", "Success")],
        ),
        (
            "create-new-user",
            vec!["--var", "email=a@example.com"],
            vec!["SNS Publish", "CreateUser", "AddUserToGroup"],
            vec![("SNS Publish", "CreateUser"), ("CreateUser", "AddUserToGroup")],
        ),
        (
            "bucket-replication",
            vec![],
            vec!["StartTaskExecution", "Wait 10s", "DescribeTaskExecution", "Job Complete?", "Success", "Fail"],
            vec![("Job Complete?", "Wait 10s"), ("Job Complete?", "Fail"), ("Job Complete?", "Success")],
        ),
        ("resize-image", vec!["--var", "query_language=jsonata"], resize_states.clone(), resize_edges.clone()),
        ("resize-image", vec!["--var", "query_language=jsonpath"], resize_states, resize_edges),
    ]
}

fn graph(args: &[&str]) -> Output {
    let state = tempfile::tempdir().unwrap();
    Deploy::new(Path::new(env!("CARGO_MANIFEST_DIR")), state.path(), &format!("http://127.0.0.1:{}", free_port())).run(args)
}

#[test]
fn every_published_definition_draws_in_every_format() {
    for (stack, extra, states, edges) in published() {
        let with = |format: &str| {
            let mut a = vec!["graph", stack, "--output", format];
            a.extend(extra.iter().copied());
            graph(&a).success().stdout
        };
        let dot = with("dot");
        assert!(dot.starts_with("digraph "), "{dot}");
        for s in &states {
            assert!(dot.contains(&format!("\"{s}\" [label=\"{s}\"")), "{stack}: node {s} in\n{dot}");
        }
        for (a, b) in &edges {
            assert!(dot.contains(&format!("\"{a}\" -> \"{b}\"")), "{stack}: edge {a} -> {b} in\n{dot}");
        }
        assert!(dot.contains("\"__start__\" -> ") && dot.contains("-> \"__end__\""), "start and end marked: {dot}");

        let mermaid = with("mermaid");
        assert!(mermaid.starts_with("flowchart TD\n"), "{mermaid}");
        for s in &states {
            assert!(mermaid.contains(&format!("\"{s}\"")), "{stack}: {s} in\n{mermaid}");
        }

        let svg = with("svg");
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{stack}: not XML: {e}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(root.tag_name().namespace(), Some("http://www.w3.org/2000/svg"));
        let texts: BTreeSet<String> =
            doc.descendants().filter(|n| n.has_tag_name("text")).filter_map(|n| n.text()).map(str::to_string).collect();
        for s in &states {
            assert!(texts.contains(*s), "{stack}: {s} is named in the SVG ({texts:?})");
        }
        let edges_drawn = doc.descendants().filter(|n| n.has_tag_name("path") && n.attribute("marker-end").is_some()).count();
        assert!(edges_drawn > edges.len(), "{stack}: {edges_drawn} edges drawn");
    }
}

#[test]
fn parallel_branches_and_map_processors_are_clusters() {
    let dot = graph(&["graph", "resize-image", "-o", "dot"]).success().stdout;
    for label in ["Map · item processor", "Resize Profile Picture · branch 1", "Resize Profile Picture · branch 2"] {
        assert!(dot.contains(&format!("label=\"{label}\"")), "{label} in\n{dot}");
    }
    let mermaid = graph(&["graph", "resize-image", "-o", "mermaid"]).success().stdout;
    assert_eq!(mermaid.matches("subgraph ").count(), 3, "{mermaid}");
}

#[test]
fn resources_graph_and_file_output() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.dot");
    let out = graph(&["graph", "should-i-deploy", "--resources", "-o", file.to_str().unwrap()]).success();
    assert!(out.stderr.contains("wrote "), "{out:?}");
    let dot = std::fs::read_to_string(&file).unwrap();
    for (a, b) in [
        ("sfn_role", "state_machine"),
        ("connection", "state_machine"),
        ("state_machine", "target"),
        ("sfn_policy", "sfn_policy_attachment"),
    ] {
        assert!(dot.contains(&format!("\"{a}\" -> \"{b}\"")), "{a} -> {b} in\n{dot}");
    }
    assert!(dot.contains("label=\"state_machine (sfn_state_machine)\""), "{dot}");
}
