//! `deploy graph` for the five published definitions, in DOT, Mermaid and SVG, and for a stack's
//! resources. No AWS is needed: references are drawn as "(known after apply)".

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use support::*;

/// (stack, extra args, every state name, a few edges as `from -> to`)
fn published() -> Vec<(
    &'static str,
    Vec<&'static str>,
    Vec<&'static str>,
    Vec<(&'static str, &'static str)>,
)> {
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
        (
            "Set Small Profile picture URI",
            "Delete Uploaded Profile Picture",
        ),
        (
            "Set Big Profile picture URI",
            "Delete Uploaded Profile Picture",
        ),
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
            vec![
                ("Should I Deploy?", "AttachUserPolicy"),
                ("Should I Deploy?", "DetachUserPolicy"),
                ("Should I Deploy?", "Success"),
            ],
        ),
        (
            "create-new-user",
            vec!["--var", "email=a@example.com"],
            vec!["SNS Publish", "CreateUser", "AddUserToGroup"],
            vec![
                ("SNS Publish", "CreateUser"),
                ("CreateUser", "AddUserToGroup"),
            ],
        ),
        (
            "bucket-replication",
            vec![],
            vec![
                "StartTaskExecution",
                "Wait 10s",
                "DescribeTaskExecution",
                "Job Complete?",
                "Success",
                "Fail",
            ],
            vec![
                ("Job Complete?", "Wait 10s"),
                ("Job Complete?", "Fail"),
                ("Job Complete?", "Success"),
            ],
        ),
        (
            "resize-image",
            vec!["--var", "query_language=jsonata"],
            resize_states.clone(),
            resize_edges.clone(),
        ),
        (
            "resize-image",
            vec!["--var", "query_language=jsonpath"],
            resize_states,
            resize_edges,
        ),
    ]
}

fn graph(args: &[&str]) -> Output {
    let state = tempfile::tempdir().unwrap();
    Deploy::new(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        state.path(),
        &format!("http://127.0.0.1:{}", free_port()),
    )
    .run(args)
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
            assert!(
                dot.contains(&format!("\"{s}\" [label=\"{s}\"")),
                "{stack}: node {s} in\n{dot}"
            );
        }
        for (a, b) in &edges {
            assert!(
                dot.contains(&format!("\"{a}\" -> \"{b}\"")),
                "{stack}: edge {a} -> {b} in\n{dot}"
            );
        }
        assert!(
            dot.contains("\"__start__\" -> ") && dot.contains("-> \"__end__\""),
            "start and end marked: {dot}"
        );

        let mermaid = with("mermaid");
        assert!(mermaid.starts_with("flowchart TD\n"), "{mermaid}");
        for s in &states {
            assert!(
                mermaid.contains(&format!("\"{s}\"")),
                "{stack}: {s} in\n{mermaid}"
            );
        }

        let svg = with("svg");
        let doc =
            roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{stack}: not XML: {e}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://www.w3.org/2000/svg")
        );
        // a node's label, its lines put back together
        let texts: BTreeSet<String> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|t| {
                t.descendants()
                    .filter(|n| n.is_text())
                    .filter_map(|n| n.text())
                    .filter(|s| !s.trim().is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        for s in &states {
            assert!(
                texts.contains(*s),
                "{stack}: {s} is named in the SVG ({texts:?})"
            );
        }
        let edges_drawn = doc
            .descendants()
            .filter(|n| n.has_tag_name("path") && n.attribute("marker-end").is_some())
            .count();
        assert!(
            edges_drawn > edges.len(),
            "{stack}: {edges_drawn} edges drawn"
        );
    }
}

#[test]
fn parallel_branches_and_map_processors_are_clusters() {
    let dot = graph(&["graph", "resize-image", "-o", "dot"])
        .success()
        .stdout;
    for label in [
        "Map · item processor",
        "Resize Profile Picture · branch 1",
        "Resize Profile Picture · branch 2",
    ] {
        assert!(
            dot.contains(&format!("label=\"{label}\"")),
            "{label} in\n{dot}"
        );
    }
    let mermaid = graph(&["graph", "resize-image", "-o", "mermaid"])
        .success()
        .stdout;
    assert_eq!(mermaid.matches("subgraph ").count(), 3, "{mermaid}");
}

#[test]
fn resources_graph_and_file_output() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.dot");
    let out = graph(&[
        "graph",
        "should-i-deploy",
        "--resources",
        "--out",
        file.to_str().unwrap(),
    ])
    .success();
    assert!(out.stderr.contains("wrote "), "{out:?}");
    let dot = std::fs::read_to_string(&file).unwrap();
    for (a, b) in [
        ("sfn_role", "sfn_policy_attachment"),
        ("sfn_policy_attachment", "state_machine"),
        ("connection", "sfn_policy"),
        ("sfn_policy", "sfn_policy_attachment"),
    ] {
        assert!(
            dot.contains(&format!("\"{a}\" -> \"{b}\"")),
            "{a} -> {b} in\n{dot}"
        );
    }
    // transitively reduced: what a longer path already says is not drawn again
    for (a, b) in [
        ("sfn_role", "state_machine"),
        ("connection", "state_machine"),
        ("state_machine", "target"),
    ] {
        assert!(
            !dot.contains(&format!("\"{a}\" -> \"{b}\"")),
            "{a} -> {b} is implied, in\n{dot}"
        );
    }
    assert!(
        dot.contains("label=\"state_machine (sfn_state_machine)\""),
        "{dot}"
    );
}

/// A drawn box: where it is, and what it is (for messages).
#[derive(Debug, Clone)]
struct Drawn {
    what: String,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Drawn {
    fn overlaps(&self, o: &Drawn) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }
    /// Whether the segment a-b passes through the inside of this box (Liang-Barsky clipping).
    fn crossed_by(&self, a: (f64, f64), b: (f64, f64)) -> bool {
        let (x0, y0, x1, y1) = (
            self.x + 1.0,
            self.y + 1.0,
            self.x + self.w - 1.0,
            self.y + self.h - 1.0,
        );
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        for (p, q) in [
            (-dx, a.0 - x0),
            (dx, x1 - a.0),
            (-dy, a.1 - y0),
            (dy, y1 - a.1),
        ] {
            if p == 0.0 {
                if q < 0.0 {
                    return false;
                }
            } else {
                let r = q / p;
                if p < 0.0 {
                    t0 = t0.max(r)
                } else {
                    t1 = t1.min(r)
                }
            }
        }
        t0 < t1
    }
}

fn num(n: roxmltree::Node, a: &str) -> f64 {
    n.attribute(a).unwrap_or("0").parse().unwrap()
}

/// Checks what a person would see: no label over a box or another label, no two boxes over
/// one another, node text inside its box, no edge through a box it does not join.
fn check_geometry(name: &str, svg: &str) {
    let doc = roxmltree::Document::parse(svg).unwrap();
    let mut nodes: Vec<(String, Drawn)> = Vec::new();
    let mut labels: Vec<Drawn> = Vec::new();
    for g in doc.descendants().filter(|n| n.has_tag_name("g")) {
        match g.attribute("class") {
            Some("node") => {
                let id = g.attribute("id").unwrap().to_string();
                let shape = g
                    .children()
                    .find(|c| c.is_element() && !c.has_tag_name("text"))
                    .unwrap();
                let b = match shape.tag_name().name() {
                    "rect" => Drawn {
                        what: id.clone(),
                        x: num(shape, "x"),
                        y: num(shape, "y"),
                        w: num(shape, "width"),
                        h: num(shape, "height"),
                    },
                    "circle" => {
                        let r = num(shape, "r");
                        Drawn {
                            what: id.clone(),
                            x: num(shape, "cx") - r,
                            y: num(shape, "cy") - r,
                            w: 2.0 * r,
                            h: 2.0 * r,
                        }
                    }
                    "polygon" => {
                        let pts: Vec<(f64, f64)> = shape
                            .attribute("points")
                            .unwrap()
                            .split_whitespace()
                            .map(|p| {
                                p.split_once(',')
                                    .map(|(x, y)| (x.parse().unwrap(), y.parse().unwrap()))
                                    .unwrap()
                            })
                            .collect();
                        let (x0, x1) = (
                            pts.iter().map(|p| p.0).fold(f64::MAX, f64::min),
                            pts.iter().map(|p| p.0).fold(f64::MIN, f64::max),
                        );
                        let (y0, y1) = (
                            pts.iter().map(|p| p.1).fold(f64::MAX, f64::min),
                            pts.iter().map(|p| p.1).fold(f64::MIN, f64::max),
                        );
                        Drawn {
                            what: id.clone(),
                            x: x0,
                            y: y0,
                            w: x1 - x0,
                            h: y1 - y0,
                        }
                    }
                    other => panic!("{name}: unexpected node shape {other}"),
                };
                // text inside: every line fits (12 px text, at most 7.2 px a character)
                let lines: Vec<&str> = g
                    .descendants()
                    .filter(|n| n.has_tag_name("tspan"))
                    .filter_map(|n| n.text())
                    .collect();
                let widest =
                    lines.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64 * 7.2;
                let room = if shape.has_tag_name("polygon") {
                    b.w * 0.62
                } else {
                    b.w - 8.0
                };
                if !shape.has_tag_name("circle") {
                    assert!(
                        widest <= room,
                        "{name}: the text of {id} ({lines:?}) spills out of its box ({} px wide)",
                        b.w
                    );
                    assert!(
                        lines.len() as f64 * 14.0 <= b.h,
                        "{name}: the text of {id} is taller than its box"
                    );
                }
                nodes.push((id, b));
            }
            Some("edge-label") => {
                let r = g.children().find(|c| c.has_tag_name("rect")).unwrap();
                let text: Vec<&str> = g
                    .descendants()
                    .filter(|n| n.has_tag_name("tspan"))
                    .filter_map(|n| n.text())
                    .collect();
                labels.push(Drawn {
                    what: format!("label {text:?}"),
                    x: num(r, "x"),
                    y: num(r, "y"),
                    w: num(r, "width"),
                    h: num(r, "height"),
                });
            }
            Some("cluster") => {
                if let Some(t) = g.children().find(|c| c.attribute("class") == Some("title")) {
                    labels.push(Drawn {
                        what: "cluster title".into(),
                        x: num(t, "x"),
                        y: num(t, "y"),
                        w: num(t, "width"),
                        h: num(t, "height"),
                    });
                }
            }
            _ => {}
        }
    }
    assert!(!nodes.is_empty(), "{name}: nodes drawn");
    let all: Vec<&Drawn> = nodes.iter().map(|(_, d)| d).chain(labels.iter()).collect();
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert!(!a.overlaps(b), "{name}: {} overlaps {}", a.what, b.what);
        }
    }
    for p in doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("edge"))
    {
        let (from, to) = (
            p.attribute("data-from").unwrap(),
            p.attribute("data-to").unwrap(),
        );
        let pts: Vec<(f64, f64)> = p
            .attribute("d")
            .unwrap()
            .split(|c| c == 'M' || c == 'L')
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                let v: Vec<f64> = s.split_whitespace().map(|n| n.parse().unwrap()).collect();
                (v[0], v[1])
            })
            .collect();
        for w in pts.windows(2) {
            for (id, b) in nodes.iter().filter(|(id, _)| id != from && id != to) {
                assert!(
                    !b.crossed_by(w[0], w[1]),
                    "{name}: the edge {from} -> {to} crosses {id}"
                );
            }
        }
    }
}

#[test]
fn diagrams_people_can_read_no_text_over_text_or_boxes_and_no_edge_through_a_box() {
    for (stack, extra, _, _) in published() {
        let mut args = vec!["graph", stack, "-o", "svg"];
        args.extend(extra.iter().copied());
        check_geometry(
            &format!("{stack} {extra:?}"),
            &graph(&args).success().stdout,
        );
    }
    for stack in [
        "should-i-deploy",
        "create-new-user",
        "bucket-replication",
        "resize-image",
    ] {
        let mut args = vec!["graph", stack, "--resources", "-o", "svg"];
        if stack == "create-new-user" {
            args.extend(["--var", "email=a@example.com"]);
        }
        check_geometry(
            &format!("{stack} resources"),
            &graph(&args).success().stdout,
        );
    }
    // the checks can fail: two boxes drawn over one another are found
    let overlapping = "<svg xmlns=\"http://www.w3.org/2000/svg\"><g class=\"node\" id=\"a\"><rect x=\"0\" y=\"0\" width=\"50\" height=\"38\"/><text><tspan>a</tspan></text></g><g class=\"node\" id=\"b\"><rect x=\"40\" y=\"0\" width=\"50\" height=\"38\"/><text><tspan>b</tspan></text></g></svg>";
    assert!(std::panic::catch_unwind(|| check_geometry("overlapping", overlapping)).is_err());
}
