//! Mermaid flowcharts.

use super::{Diagram, EdgeKind, Mark, Shape};
use std::collections::BTreeMap;

fn text(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "#quot;"))
}

pub fn render(d: &Diagram) -> String {
    let ids: BTreeMap<&str, String> = d
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), format!("n{i}")))
        .collect();
    let mut out = String::from("flowchart TD\n");
    cluster(d, &ids, None, 0, &mut out);
    edges(d, &ids, &mut out);
    out.push_str("  classDef visited fill:#c8ecd0,stroke:#1d8102\n  classDef failed fill:#f6b9b3,stroke:#d13212\n");
    for (mark, class) in [(Mark::Visited, "visited"), (Mark::Failed, "failed")] {
        let members: Vec<&str> = d
            .nodes
            .iter()
            .filter(|n| n.mark == Some(mark))
            .map(|n| ids[n.id.as_str()].as_str())
            .collect();
        if !members.is_empty() {
            out.push_str(&format!("  class {} {class}\n", members.join(",")));
        }
    }
    out
}

/// The nodes of cluster `c` (none: the top), then its clusters as subgraphs.
fn cluster(
    d: &Diagram,
    ids: &BTreeMap<&str, String>,
    c: Option<usize>,
    depth: usize,
    out: &mut String,
) {
    let pad = "  ".repeat(depth + 1);
    for n in d.nodes.iter().filter(|n| n.cluster == c) {
        let l = text(&n.label);
        let shape = match n.shape {
            Shape::Start | Shape::End => format!("(({l}))"),
            Shape::Choice => format!("{{{l}}}"),
            Shape::Succeed | Shape::Fail => format!("([{l}])"),
            _ => format!("[{l}]"),
        };
        out.push_str(&format!("{pad}{}{shape}\n", ids[n.id.as_str()]));
    }
    for (i, cl) in d
        .clusters
        .iter()
        .enumerate()
        .filter(|(_, cl)| cl.parent == c)
    {
        out.push_str(&format!("{pad}subgraph c{i}[{}]\n", text(&cl.label)));
        cluster(d, ids, Some(i), depth + 1, out);
        out.push_str(&format!("{pad}end\n"));
    }
}

/// The edges: dashed for Catch and branches, the path taken in green.
fn edges(d: &Diagram, ids: &BTreeMap<&str, String>, out: &mut String) {
    for (i, e) in d.edges.iter().enumerate() {
        let arrow = match e.kind {
            EdgeKind::Catch | EdgeKind::Branch | EdgeKind::Join => "-.->",
            _ => "-->",
        };
        let label = if e.label.is_empty() {
            String::new()
        } else {
            format!("|{}|", text(&e.label))
        };
        out.push_str(&format!(
            "  {} {arrow}{label} {}\n",
            ids[e.from.as_str()],
            ids[e.to.as_str()]
        ));
        if e.taken {
            out.push_str(&format!(
                "  linkStyle {i} stroke:#1d8102,stroke-width:3px\n"
            ));
        }
    }
}
