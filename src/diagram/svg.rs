//! SVG, laid out here: nodes in layers by longest path from the start (back edges, such as a
//! polling loop, ignored for layering and drawn around the side), clusters as dashed boxes
//! around their members, edges as straight arrows with their labels.

use super::{Diagram, EdgeKind, Mark, Shape};
use std::collections::{BTreeMap, BTreeSet};

const H: f64 = 38.0;
const GAP_X: f64 = 36.0;
const GAP_Y: f64 = 62.0;
const MARGIN: f64 = 30.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn width(label: &str, shape: Shape) -> f64 {
    match shape {
        Shape::Start | Shape::End => H,
        Shape::Choice => (label.chars().count() as f64 * 6.6 + 50.0).clamp(90.0, 300.0),
        _ => (label.chars().count() as f64 * 6.6 + 28.0).clamp(70.0, 280.0),
    }
}

/// Layers by longest path, ignoring the edges that close a cycle.
fn layers(d: &Diagram) -> BTreeMap<String, usize> {
    let mut out_edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in &d.edges {
        out_edges.entry(e.from.as_str()).or_default().push(e.to.as_str());
    }
    // DFS from every root in node order to find back edges.
    let mut back: BTreeSet<(String, String)> = BTreeSet::new();
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    fn dfs<'a>(n: &'a str, g: &BTreeMap<&'a str, Vec<&'a str>>, state: &mut BTreeMap<&'a str, u8>, back: &mut BTreeSet<(String, String)>) {
        state.insert(n, 1);
        for &m in g.get(n).map(|v| v.as_slice()).unwrap_or(&[]) {
            match state.get(m) {
                Some(1) => {
                    back.insert((n.to_string(), m.to_string()));
                }
                Some(_) => {}
                None => dfs(m, g, state, back),
            }
        }
        state.insert(n, 2);
    }
    for n in &d.nodes {
        if !state.contains_key(n.id.as_str()) {
            dfs(&n.id, &out_edges, &mut state, &mut back);
        }
    }
    let mut rank: BTreeMap<String, usize> = d.nodes.iter().map(|n| (n.id.clone(), 0)).collect();
    // Relax edges until stable (acyclic once back edges are dropped).
    for _ in 0..d.nodes.len() + 1 {
        let mut changed = false;
        for e in &d.edges {
            if back.contains(&(e.from.clone(), e.to.clone())) {
                continue;
            }
            let r = rank[&e.from] + 1;
            if rank[&e.to] < r {
                rank.insert(e.to.clone(), r);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    rank
}

struct Placed {
    x: f64,
    y: f64,
    w: f64,
}

pub fn render(d: &Diagram) -> String {
    let rank = layers(d);
    let max_rank = rank.values().copied().max().unwrap_or(0);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); max_rank + 1];
    for (i, n) in d.nodes.iter().enumerate() {
        rows[rank[&n.id]].push(i);
    }
    // Keep each cluster's members together within a row.
    for row in &mut rows {
        row.sort_by_key(|&i| (d.cluster_chain(d.nodes[i].cluster).into_iter().rev().collect::<Vec<_>>(), i));
    }
    let row_width = |row: &Vec<usize>| {
        row.iter().map(|&i| width(&d.nodes[i].label, d.nodes[i].shape)).sum::<f64>() + GAP_X * (row.len().saturating_sub(1)) as f64
    };
    let total_w = rows.iter().map(row_width).fold(0.0, f64::max);
    let mut placed: BTreeMap<&str, Placed> = BTreeMap::new();
    for (r, row) in rows.iter().enumerate() {
        let mut x = MARGIN + 60.0 + (total_w - row_width(row)) / 2.0;
        for &i in row {
            let n = &d.nodes[i];
            let w = width(&n.label, n.shape);
            placed.insert(&n.id, Placed { x, y: MARGIN + 24.0 + r as f64 * (H + GAP_Y), w });
            x += w + GAP_X;
        }
    }
    let width_px = total_w + 2.0 * MARGIN + 160.0;
    let height_px = (max_rank + 1) as f64 * (H + GAP_Y) + 2.0 * MARGIN;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width_px:.0}\" height=\"{height_px:.0}\" viewBox=\"0 0 {width_px:.0} {height_px:.0}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
    );
    out.push_str(&format!("  <title>{}</title>\n", esc(&d.title)));
    out.push_str("  <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#545b64\"/></marker></defs>\n");
    out.push_str(&format!("  <rect width=\"{width_px:.0}\" height=\"{height_px:.0}\" fill=\"#ffffff\"/>\n"));

    // clusters, outermost first, around all nodes they contain (directly or nested)
    let mut order: Vec<usize> = (0..d.clusters.len()).collect();
    order.sort_by_key(|&c| d.cluster_chain(Some(c)).len());
    for c in order {
        let depth = d.cluster_chain(Some(c)).len() as f64;
        let members: Vec<&Placed> =
            d.nodes.iter().filter(|n| d.cluster_chain(n.cluster).contains(&c)).filter_map(|n| placed.get(n.id.as_str())).collect();
        if members.is_empty() {
            continue;
        }
        let pad = 26.0 - depth * 6.0;
        let x0 = members.iter().map(|p| p.x).fold(f64::MAX, f64::min) - pad;
        let y0 = members.iter().map(|p| p.y).fold(f64::MAX, f64::min) - pad - 10.0;
        let x1 = members.iter().map(|p| p.x + p.w).fold(0.0, f64::max) + pad;
        let y1 = members.iter().map(|p| p.y + H).fold(0.0, f64::max) + pad;
        out.push_str(&format!(
            "  <g class=\"cluster\"><rect x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"8\" fill=\"#f7f9fc\" fill-opacity=\"0.6\" stroke=\"#8d99a8\" stroke-dasharray=\"5 4\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#545b64\" font-size=\"10\">{}</text></g>\n",
            x1 - x0,
            y1 - y0,
            x0 + 6.0,
            y0 + 12.0,
            esc(&d.clusters[c].label)
        ));
    }

    // edges; labels of edges leaving the same node are staggered so they do not overlap
    let mut nth_label: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &d.edges {
        let (Some(a), Some(b)) = (placed.get(e.from.as_str()), placed.get(e.to.as_str())) else { continue };
        let color = if e.taken {
            "#1d8102"
        } else if e.kind == EdgeKind::Catch {
            "#d13212"
        } else {
            "#545b64"
        };
        let dash = match e.kind {
            EdgeKind::Catch | EdgeKind::Branch | EdgeKind::Join => " stroke-dasharray=\"4 3\"",
            _ => "",
        };
        let sw = if e.taken { 2.5 } else { 1.2 };
        let (x1, y1) = (a.x + a.w / 2.0, a.y + H);
        let (x2, y2) = (b.x + b.w / 2.0, b.y);
        let (path, lx, ly) = if b.y > a.y {
            // labels sit toward the target, so edges fanning out of one node keep theirs apart
            (format!("M {x1:.1} {y1:.1} L {x2:.1} {y2:.1}"), x1 + (x2 - x1) * 0.62, y1 + (y2 - y1) * 0.62)
        } else {
            // back edge: out of the source's right side, round the right of the diagram, into the target's right side
            let side = width_px - MARGIN - 40.0;
            let (sx, sy) = (a.x + a.w, a.y + H / 2.0);
            let (tx, ty) = (b.x + b.w, b.y + H / 2.0);
            (format!("M {sx:.1} {sy:.1} C {side:.1} {sy:.1}, {side:.1} {ty:.1}, {tx:.1} {ty:.1}"), side - 10.0, (sy + ty) / 2.0)
        };
        out.push_str(&format!(
            "  <path d=\"{path}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"{sw}\"{dash} marker-end=\"url(#arrow)\"/>\n"
        ));
        if !e.label.is_empty() {
            let k = nth_label.entry(e.from.as_str()).or_insert(0);
            let ly = ly + (*k % 3) as f64 * 14.0 - 14.0 * (b.y > a.y) as i32 as f64;
            *k += 1;
            let label =
                if e.label.chars().count() > 36 { format!("{}…", e.label.chars().take(35).collect::<String>()) } else { e.label.clone() };
            let lw = label.chars().count() as f64 * 5.6 + 8.0;
            out.push_str(&format!(
                "  <g class=\"edge-label\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{lw:.1}\" height=\"14\" fill=\"#ffffff\" fill-opacity=\"0.85\"/><text x=\"{lx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"9.5\" fill=\"{color}\">{}</text></g>\n",
                lx - lw / 2.0,
                ly - 10.0,
                ly + 1.0,
                esc(&label)
            ));
        }
    }

    // nodes
    for n in &d.nodes {
        let p = &placed[n.id.as_str()];
        let (fill, stroke) = match (n.mark, n.shape) {
            (Some(Mark::Failed), _) => ("#f6b9b3", "#d13212"),
            (Some(Mark::Visited), _) => ("#c8ecd0", "#1d8102"),
            (_, Shape::Start | Shape::End) => ("#232f3e", "#232f3e"),
            (_, Shape::Succeed) => ("#e6f4ea", "#1d8102"),
            (_, Shape::Fail) => ("#fdecea", "#d13212"),
            (_, Shape::Choice) => ("#fff4e5", "#c7761a"),
            (_, Shape::Parallel | Shape::Map) => ("#eef3fb", "#3f6fb5"),
            _ => ("#ffffff", "#545b64"),
        };
        let (cx, cy) = (p.x + p.w / 2.0, p.y + H / 2.0);
        let shape = match n.shape {
            Shape::Start | Shape::End => {
                format!("<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"{:.1}\" fill=\"{fill}\" stroke=\"{stroke}\"/>", H / 2.0)
            }
            Shape::Choice => format!(
                "<polygon points=\"{:.1},{cy:.1} {cx:.1},{:.1} {:.1},{cy:.1} {cx:.1},{:.1}\" fill=\"{fill}\" stroke=\"{stroke}\"/>",
                p.x,
                p.y,
                p.x + p.w,
                p.y + H
            ),
            _ => format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{H}\" rx=\"6\" fill=\"{fill}\" stroke=\"{stroke}\"/>",
                p.x, p.y, p.w
            ),
        };
        let color = if matches!(n.shape, Shape::Start | Shape::End) && n.mark.is_none() { "#ffffff" } else { "#16191f" };
        let size = if matches!(n.shape, Shape::Start | Shape::End) { " font-size=\"9\"" } else { "" };
        out.push_str(&format!(
            "  <g class=\"node\" id=\"{}\">{shape}<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{color}\"{size}>{}</text></g>\n",
            esc(&n.id),
            cy + 4.0,
            esc(&n.label)
        ));
    }
    out.push_str("</svg>\n");
    out
}
