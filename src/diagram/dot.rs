//! Graphviz DOT.

use super::{Diagram, EdgeKind, Mark, Shape};

fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn node_attrs(shape: Shape, mark: Option<Mark>) -> String {
    let (shape, fill) = match shape {
        Shape::Start => ("circle", "#232f3e"),
        Shape::End => ("doublecircle", "#232f3e"),
        Shape::Choice => ("diamond", "#fff4e5"),
        Shape::Succeed => ("box", "#e6f4ea"),
        Shape::Fail => ("box", "#fdecea"),
        Shape::Parallel | Shape::Map => ("box", "#eef3fb"),
        Shape::Resource => ("box", "#f4f4f4"),
        _ => ("box", "#ffffff"),
    };
    let fill = match mark {
        Some(Mark::Visited) => "#c8ecd0",
        Some(Mark::Failed) => "#f6b9b3",
        None => fill,
    };
    let font = if fill == "#232f3e" {
        ", fontcolor=\"#ffffff\", width=0.6, fixedsize=true"
    } else {
        ""
    };
    format!("shape={shape}, style=\"rounded,filled\", fillcolor=\"{fill}\"{font}")
}

pub fn render(d: &Diagram) -> String {
    let mut out = format!(
        "digraph {} {{\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=11];\n  edge [fontname=\"Helvetica\", fontsize=9];\n",
        q(&d.title)
    );
    fn cluster(d: &Diagram, c: Option<usize>, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth + 1);
        for n in d.nodes.iter().filter(|n| n.cluster == c) {
            out.push_str(&format!(
                "{pad}{} [label={}, {}];\n",
                q(&n.id),
                q(&n.label),
                node_attrs(n.shape, n.mark)
            ));
        }
        for (i, cl) in d
            .clusters
            .iter()
            .enumerate()
            .filter(|(_, cl)| cl.parent == c)
        {
            out.push_str(&format!(
                "{pad}subgraph cluster_{i} {{\n{pad}  label={};\n{pad}  style=dashed;\n",
                q(&cl.label)
            ));
            cluster(d, Some(i), depth + 1, out);
            out.push_str(&format!("{pad}}}\n"));
        }
    }
    cluster(d, None, 0, &mut out);
    for e in &d.edges {
        let mut attrs = Vec::new();
        if !e.label.is_empty() {
            attrs.push(format!("label={}", q(&e.label)));
        }
        match e.kind {
            EdgeKind::Catch => attrs.push("style=dashed, color=\"#d13212\"".into()),
            EdgeKind::Branch | EdgeKind::Join => attrs.push("style=dotted".into()),
            _ => {}
        }
        if e.taken {
            attrs.push("color=\"#1d8102\", penwidth=2".into());
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        out.push_str(&format!("  {} -> {}{attrs};\n", q(&e.from), q(&e.to)));
    }
    out.push_str("}\n");
    out
}
