//! SVG, laid out here: nodes in layers by longest path from the start (back edges, such as a
//! polling loop, ignored for layering and drawn around the right side), ordered within a layer
//! to follow their predecessors, clusters as dashed boxes around their members. Labels wrap
//! instead of being cut; an edge that spans layers passes them through the gaps between boxes;
//! an edge's label goes where it overlaps no box and no other label.

use super::{Diagram, EdgeKind, Mark, Shape};
use std::collections::{BTreeMap, BTreeSet};

const H: f64 = 38.0;
const GAP_X: f64 = 36.0;
const GAP_Y: f64 = 66.0;
const MARGIN: f64 = 30.0;
/// Width of a character of node text (12 px Helvetica, generous so text stays inside).
const CHAR_W: f64 = 7.0;
const LINE: f64 = 14.0;
const NODE_CHARS: usize = 32;
/// Edge labels: 9.5 px text.
const LABEL_CHAR_W: f64 = 5.9;
const LABEL_LINE: f64 = 12.0;
const LABEL_CHARS: usize = 30;

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Words filled into lines of at most `max` characters (a longer word is split).
pub fn wrap(text: &str, max: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > max {
            if !cur.is_empty() {
                lines.push(std::mem::take(&mut cur));
            }
            lines.push(word.drain(..max).collect());
        }
        let word: String = word.into_iter().collect();
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > max {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur += &word;
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// A rectangle: top-left corner and size.
#[derive(Debug, Clone, Copy)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Rect {
    fn overlaps(&self, o: &Rect, pad: f64) -> bool {
        self.x < o.x + o.w + pad
            && o.x < self.x + self.w + pad
            && self.y < o.y + o.h + pad
            && o.y < self.y + self.h + pad
    }
    fn cx(&self) -> f64 {
        self.x + self.w / 2.0
    }
    fn cy(&self) -> f64 {
        self.y + self.h / 2.0
    }
}

struct Sized {
    w: f64,
    h: f64,
    lines: Vec<String>,
}

fn size(label: &str, shape: Shape) -> Sized {
    if matches!(shape, Shape::Start | Shape::End) {
        return Sized {
            w: H,
            h: H,
            lines: vec![label.to_string()],
        };
    }
    let lines = wrap(label, NODE_CHARS);
    let text_w = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64 * CHAR_W;
    let text_h = lines.len() as f64 * LINE;
    match shape {
        // a diamond holds its text in its middle half
        Shape::Choice => Sized {
            w: (text_w * 1.6 + 40.0).max(100.0),
            h: (text_h * 1.8 + 12.0).max(H),
            lines,
        },
        _ => Sized {
            w: (text_w + 28.0).max(70.0),
            h: (text_h + 16.0).max(H),
            lines,
        },
    }
}

/// Layers by longest path, ignoring the edges that close a cycle; and those back edges.
fn layers(d: &Diagram) -> (BTreeMap<String, usize>, BTreeSet<(String, String)>) {
    let back = back_edges(d);
    let forward: Vec<&super::Edge> = d
        .edges
        .iter()
        .filter(|e| !back.contains(&(e.from.clone(), e.to.clone())))
        .collect();
    let mut rank: BTreeMap<String, usize> = d.nodes.iter().map(|n| (n.id.clone(), 0)).collect();
    // Relax edges until stable (acyclic once back edges are dropped).
    for _ in 0..d.nodes.len() + 1 {
        let mut changed = false;
        for e in &forward {
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
    // a node nothing leads to sits just above the first node it leads to (a role used at
    // the bottom is drawn there, not at the top with a long edge down)
    for n in &d.nodes {
        if forward.iter().any(|e| e.to == n.id) {
            continue;
        }
        let below = forward
            .iter()
            .filter(|e| e.from == n.id)
            .map(|e| rank[&e.to]);
        if let Some(first) = below.min() {
            rank.insert(n.id.clone(), first.saturating_sub(1));
        }
    }
    (rank, back)
}

/// The edges that close a cycle: found by a depth-first search from every root in node order.
fn back_edges(d: &Diagram) -> BTreeSet<(String, String)> {
    let mut out_edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in &d.edges {
        out_edges
            .entry(e.from.as_str())
            .or_default()
            .push(e.to.as_str());
    }
    let mut back: BTreeSet<(String, String)> = BTreeSet::new();
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    fn dfs<'a>(
        n: &'a str,
        g: &BTreeMap<&'a str, Vec<&'a str>>,
        state: &mut BTreeMap<&'a str, u8>,
        back: &mut BTreeSet<(String, String)>,
    ) {
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
    back
}

/// Each layer's nodes, clusters kept together, and within them ordered by the mean position
/// of their predecessors (fewer crossings).
fn order_rows(
    d: &Diagram,
    rank: &BTreeMap<String, usize>,
    back: &BTreeSet<(String, String)>,
) -> Vec<Vec<usize>> {
    let max_rank = rank.values().copied().max().unwrap_or(0);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); max_rank + 1];
    for (i, n) in d.nodes.iter().enumerate() {
        rows[rank[&n.id]].push(i);
    }
    let index: BTreeMap<&str, usize> = d
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut pos: BTreeMap<usize, f64> = BTreeMap::new();
    for r in 0..rows.len() {
        let bary = |i: usize, pos: &BTreeMap<usize, f64>| {
            let preds: Vec<f64> = d
                .edges
                .iter()
                .filter(|e| {
                    e.to == d.nodes[i].id && !back.contains(&(e.from.clone(), e.to.clone()))
                })
                .filter_map(|e| pos.get(&index[e.from.as_str()]).copied())
                .collect();
            if preds.is_empty() {
                i as f64
            } else {
                preds.iter().sum::<f64>() / preds.len() as f64
            }
        };
        let mut keyed: Vec<(Vec<usize>, f64, usize)> = rows[r]
            .iter()
            .map(|&i| {
                (
                    d.cluster_chain(d.nodes[i].cluster)
                        .into_iter()
                        .rev()
                        .collect(),
                    bary(i, &pos),
                    i,
                )
            })
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
        rows[r] = keyed.into_iter().map(|k| k.2).collect();
        for (p, &i) in rows[r].iter().enumerate() {
            pos.insert(i, p as f64);
        }
    }
    rows
}

struct Layout {
    boxes: BTreeMap<String, Rect>,
    lines: BTreeMap<String, Vec<String>>,
    /// Each row's top and height.
    rows: Vec<(f64, f64)>,
    rank: BTreeMap<String, usize>,
    back: BTreeSet<(String, String)>,
    height: f64,
    /// x of the lanes back edges climb in, right of everything.
    lane_x: f64,
}

fn layout(d: &Diagram) -> Layout {
    let (rank, back) = layers(d);
    let rows = order_rows(d, &rank, &back);
    let sizes: Vec<Sized> = d.nodes.iter().map(|n| size(&n.label, n.shape)).collect();
    // room between rows for the labels of the edges that leave them
    let label_lines = |r: usize| -> usize {
        rows[r]
            .iter()
            .map(|&i| {
                d.edges
                    .iter()
                    .filter(|e| e.from == d.nodes[i].id && !e.label.is_empty())
                    .map(|e| wrap(&e.label, LABEL_CHARS).len())
                    .sum()
            })
            .max()
            .unwrap_or(0)
    };
    let row_width = |row: &Vec<usize>| {
        row.iter().map(|&i| sizes[i].w).sum::<f64>() + GAP_X * (row.len().saturating_sub(1)) as f64
    };
    let total_w = rows.iter().map(row_width).fold(0.0, f64::max);
    let mut boxes = BTreeMap::new();
    let mut lines = BTreeMap::new();
    let mut row_pos = Vec::new();
    let mut y = MARGIN + 24.0;
    for (r, row) in rows.iter().enumerate() {
        let h = row.iter().map(|&i| sizes[i].h).fold(H, f64::max);
        let mut x = MARGIN + 20.0 + (total_w - row_width(row)) / 2.0;
        for &i in row {
            let s = &sizes[i];
            boxes.insert(
                d.nodes[i].id.clone(),
                Rect {
                    x,
                    y: y + (h - s.h) / 2.0,
                    w: s.w,
                    h: s.h,
                },
            );
            lines.insert(d.nodes[i].id.clone(), s.lines.clone());
            x += s.w + GAP_X;
        }
        row_pos.push((y, h));
        y += h + GAP_Y + (label_lines(r).saturating_sub(2) as f64) * LABEL_LINE;
    }
    let lane_x = MARGIN + 20.0 + total_w + 30.0;
    Layout {
        boxes,
        lines,
        rows: row_pos,
        rank,
        back,
        height: y - GAP_Y + MARGIN + 20.0,
        lane_x,
    }
}

/// Where an edge goes: a polyline that passes every layer between its ends through a gap
/// between boxes; a back edge climbs in its own lane right of everything.
fn route(l: &Layout, from: &str, to: &str, lane: usize) -> Vec<(f64, f64)> {
    let (a, b) = (l.boxes[from], l.boxes[to]);
    let (ra, rb) = (l.rank[from], l.rank[to]);
    let gap_below = |r: usize| l.rows[r].0 + l.rows[r].1 + GAP_Y / 2.0;
    let gap_above = |r: usize| l.rows[r].0 - GAP_Y / 2.0;
    if l.back.contains(&(from.to_string(), to.to_string())) || rb <= ra {
        let lane_x = l.lane_x + lane as f64 * 14.0;
        let (ax, bx) = (a.x + a.w + 12.0, b.x + b.w + 12.0);
        return vec![
            (a.x + a.w, a.cy()),
            (ax, a.cy()),
            (ax, gap_below(ra) - 6.0 + lane as f64 * 4.0),
            (lane_x, gap_below(ra) - 6.0 + lane as f64 * 4.0),
            (lane_x, gap_above(rb) + lane as f64 * 4.0),
            (bx, gap_above(rb) + lane as f64 * 4.0),
            (bx, b.cy()),
            (b.x + b.w, b.cy()),
        ];
    }
    let mut pts = vec![(a.cx(), a.y + a.h)];
    for r in ra + 1..rb {
        // where a straight line would cross this row, moved into the nearest gap
        let t = (r - ra) as f64 / (rb - ra) as f64;
        let want = a.cx() + (b.cx() - a.cx()) * t;
        let (top, h) = l.rows[r];
        let mut in_row: Vec<Rect> = l
            .boxes
            .iter()
            .filter(|(id, _)| l.rank[id.as_str()] == r)
            .map(|(_, b)| *b)
            .collect();
        in_row.sort_by(|p, q| p.x.total_cmp(&q.x));
        let mut gaps: Vec<(f64, f64)> = Vec::new();
        let mut left = f64::MIN / 4.0;
        for bx in &in_row {
            gaps.push((left, bx.x));
            left = bx.x + bx.w;
        }
        gaps.push((left, f64::MAX / 4.0));
        let x = gaps
            .iter()
            .map(|&(g0, g1)| {
                let (lo, hi) = (g0 + 10.0, g1 - 10.0);
                if lo > hi {
                    (g0 + g1) / 2.0
                } else {
                    want.clamp(lo, hi)
                }
            })
            .min_by(|p, q| (p - want).abs().total_cmp(&(q - want).abs()))
            .unwrap_or(want);
        pts.push((x, top - 4.0));
        pts.push((x, top + h + 4.0));
    }
    pts.push((b.cx(), b.y));
    pts
}

/// A spot for an edge label along its route where it overlaps no box and no placed label.
fn place_label(
    route: &[(f64, f64)],
    w: f64,
    h: f64,
    obstacles: &[Rect],
    toward_target: bool,
) -> Rect {
    let mut segments: Vec<((f64, f64), (f64, f64))> =
        route.windows(2).map(|p| (p[0], p[1])).collect();
    if toward_target {
        segments.reverse();
    }
    let mut best: Option<(usize, Rect)> = None;
    for (a, b) in segments {
        for t in [0.5, 0.32, 0.68, 0.18, 0.82] {
            let (cx, cy) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
            for dx in [0.0, w / 2.0 + 6.0, -(w / 2.0 + 6.0), w + 12.0, -(w + 12.0)] {
                for dy in [0.0, -h, h] {
                    let r = Rect {
                        x: cx + dx - w / 2.0,
                        y: cy + dy - h / 2.0,
                        w,
                        h,
                    };
                    let hits = obstacles.iter().filter(|o| o.overlaps(&r, 2.0)).count();
                    if hits == 0 {
                        return r;
                    }
                    if best.as_ref().is_none_or(|(n, _)| hits < *n) {
                        best = Some((hits, r));
                    }
                }
            }
        }
    }
    best.map(|b| b.1).unwrap_or(Rect {
        x: 0.0,
        y: 0.0,
        w,
        h,
    })
}

fn path_d(pts: &[(f64, f64)]) -> String {
    let mut s = String::new();
    for (i, (x, y)) in pts.iter().enumerate() {
        s += &format!("{}{x:.1} {y:.1}", if i == 0 { "M " } else { " L " });
    }
    s
}

pub fn render(d: &Diagram) -> String {
    let l = layout(d);
    // what a label must not cover: every box, every cluster title, every label placed
    let mut obstacles: Vec<Rect> = l.boxes.values().copied().collect();
    let clusters = draw_clusters(d, &l, &mut obstacles);
    let (edges, lanes) = draw_edges(d, &l, &mut obstacles);
    let nodes = draw_nodes(d, &l);
    // the canvas holds everything drawn: boxes, labels, back-edge lanes
    let width_px = obstacles
        .iter()
        .map(|r| r.x + r.w)
        .fold(l.lane_x + lanes as f64 * 14.0, f64::max)
        + MARGIN;
    let height_px = obstacles
        .iter()
        .map(|r| r.y + r.h)
        .fold(l.height - MARGIN, f64::max)
        + MARGIN;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width_px:.0}\" height=\"{height_px:.0}\" viewBox=\"0 0 {width_px:.0} {height_px:.0}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n  <title>{}</title>\n  <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#545b64\"/></marker></defs>\n  <rect width=\"{width_px:.0}\" height=\"{height_px:.0}\" fill=\"#ffffff\"/>\n{clusters}{edges}{nodes}</svg>\n",
        esc(&d.title)
    )
}

/// Clusters, outermost first, as dashed boxes around every node they hold (directly or
/// nested); their titles become obstacles for labels.
fn draw_clusters(d: &Diagram, l: &Layout, obstacles: &mut Vec<Rect>) -> String {
    let mut out = String::new();
    let mut order: Vec<usize> = (0..d.clusters.len()).collect();
    order.sort_by_key(|&c| d.cluster_chain(Some(c)).len());
    for c in order {
        let depth = d.cluster_chain(Some(c)).len() as f64;
        let members: Vec<&Rect> = d
            .nodes
            .iter()
            .filter(|n| d.cluster_chain(n.cluster).contains(&c))
            .filter_map(|n| l.boxes.get(&n.id))
            .collect();
        if members.is_empty() {
            continue;
        }
        let pad = 26.0 - depth * 6.0;
        let x0 = members.iter().map(|p| p.x).fold(f64::MAX, f64::min) - pad;
        let y0 = members.iter().map(|p| p.y).fold(f64::MAX, f64::min) - pad - 10.0;
        let x1 = members.iter().map(|p| p.x + p.w).fold(0.0, f64::max) + pad;
        let y1 = members.iter().map(|p| p.y + p.h).fold(0.0, f64::max) + pad;
        let title = &d.clusters[c].label;
        let tw = title.chars().count() as f64 * 6.0 + 4.0;
        obstacles.push(Rect {
            x: x0 + 4.0,
            y: y0 + 2.0,
            w: tw,
            h: 13.0,
        });
        out += &format!(
            "  <g class=\"cluster\"><rect x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"8\" fill=\"#f7f9fc\" fill-opacity=\"0.6\" stroke=\"#8d99a8\" stroke-dasharray=\"5 4\"/><rect class=\"title\" x=\"{:.1}\" y=\"{:.1}\" width=\"{tw:.1}\" height=\"13\" fill=\"none\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#545b64\" font-size=\"10\">{}</text></g>\n",
            x1 - x0,
            y1 - y0,
            x0 + 4.0,
            y0 + 2.0,
            x0 + 6.0,
            y0 + 12.0,
            esc(title)
        );
    }

    out
}

/// Edges along their routes, then their labels where nothing else is; and how many back
/// edges needed a lane.
/// An edge's label, placed clear of what is drawn already (and then an obstacle itself).
fn edge_label(
    label: &str,
    pts: &[(f64, f64)],
    color: &str,
    down: bool,
    obstacles: &mut Vec<Rect>,
) -> String {
    let text = wrap(label, LABEL_CHARS);
    let w = text.iter().map(|t| t.chars().count()).max().unwrap_or(0) as f64 * LABEL_CHAR_W + 8.0;
    let h = text.len() as f64 * LABEL_LINE + 3.0;
    let r = place_label(pts, w, h, obstacles, down);
    obstacles.push(r);
    let tspans: String = text
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                "<tspan x=\"{:.1}\" y=\"{:.1}\">{}</tspan>",
                r.cx(),
                r.y + 10.5 + i as f64 * LABEL_LINE,
                esc(t)
            )
        })
        .collect();
    format!(
        "  <g class=\"edge-label\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"#ffffff\" fill-opacity=\"0.9\"/><text text-anchor=\"middle\" font-size=\"9.5\" fill=\"{color}\">{tspans}</text></g>\n",
        r.x, r.y
    )
}

fn draw_edges(d: &Diagram, l: &Layout, obstacles: &mut Vec<Rect>) -> (String, usize) {
    let mut out = String::new();
    let mut labels = String::new();
    let mut lane = 0;
    for e in &d.edges {
        if !l.boxes.contains_key(&e.from) || !l.boxes.contains_key(&e.to) {
            continue;
        }
        let is_back =
            l.back.contains(&(e.from.clone(), e.to.clone())) || l.rank[&e.to] <= l.rank[&e.from];
        let pts = route(l, &e.from, &e.to, lane);
        if is_back {
            lane += 1;
        }
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
        out += &format!(
            "  <path class=\"edge\" data-from=\"{}\" data-to=\"{}\" d=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"{sw}\"{dash} marker-end=\"url(#arrow)\"/>\n",
            esc(&e.from),
            esc(&e.to),
            path_d(&pts)
        );
        if e.label.is_empty() {
            continue;
        }
        labels += &edge_label(&e.label, &pts, color, !is_back, obstacles);
    }
    out += &labels;
    (out, lane)
}

/// A node's outline (circle, diamond or box), coloured by its kind and by what an execution
/// did there.
fn node_shape(n: &super::Node, p: Rect) -> String {
    let (fill, stroke) = match (n.mark, n.shape) {
        (Some(Mark::Failed), _) => ("#f6b9b3", "#d13212"),
        (Some(Mark::Visited), _) => ("#c8ecd0", "#1d8102"),
        (_, Shape::Start | Shape::End) => ("#232f3e", "#232f3e"),
        // an end state by its outline only: a filled one reads as visited
        (_, Shape::Succeed) => ("#ffffff", "#1d8102"),
        (_, Shape::Fail) => ("#ffffff", "#d13212"),
        (_, Shape::Choice) => ("#fff4e5", "#c7761a"),
        (_, Shape::Parallel | Shape::Map) => ("#eef3fb", "#3f6fb5"),
        _ => ("#ffffff", "#545b64"),
    };
    let (cx, cy) = (p.cx(), p.cy());
    let shape = match n.shape {
        Shape::Start | Shape::End => {
            format!(
                "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"{:.1}\" fill=\"{fill}\" stroke=\"{stroke}\"/>",
                H / 2.0
            )
        }
        Shape::Choice => format!(
            "<polygon points=\"{:.1},{cy:.1} {cx:.1},{:.1} {:.1},{cy:.1} {cx:.1},{:.1}\" fill=\"{fill}\" stroke=\"{stroke}\"/>",
            p.x,
            p.y,
            p.x + p.w,
            p.y + p.h
        ),
        _ => format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"6\" fill=\"{fill}\" stroke=\"{stroke}\"/>",
            p.x, p.y, p.w, p.h
        ),
    };
    shape
}

/// Nodes: their shape, colour (and the path an execution took) and wrapped text.
fn draw_nodes(d: &Diagram, l: &Layout) -> String {
    let mut out = String::new();
    for n in &d.nodes {
        let p = l.boxes[&n.id];
        let shape = node_shape(n, p);
        let (cx, cy) = (p.cx(), p.cy());
        let color = if matches!(n.shape, Shape::Start | Shape::End) && n.mark.is_none() {
            "#ffffff"
        } else {
            "#16191f"
        };
        let size = if matches!(n.shape, Shape::Start | Shape::End) {
            " font-size=\"9\""
        } else {
            ""
        };
        let lines = &l.lines[&n.id];
        let first = cy + 4.0 - (lines.len() as f64 - 1.0) * LINE / 2.0;
        let tspans: String = lines
            .iter()
            .enumerate()
            .map(|(i, t)| {
                format!(
                    "<tspan x=\"{cx:.1}\" y=\"{:.1}\">{}</tspan>",
                    first + i as f64 * LINE,
                    esc(t)
                )
            })
            .collect();
        let mark = match n.mark {
            Some(super::Mark::Visited) => " data-mark=\"visited\"",
            Some(super::Mark::Failed) => " data-mark=\"failed\"",
            None => "",
        };
        out += &format!(
            "  <g class=\"node\" id=\"{}\" data-label=\"{}\"{mark}>{shape}<text text-anchor=\"middle\" fill=\"{color}\"{size}>{tspans}</text></g>\n",
            esc(&n.id),
            esc(&n.label)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_state_the_execution_did_not_reach_is_not_filled_as_visited() {
        let node = |mark, shape| super::super::Node {
            id: "Success".into(),
            label: "Success".into(),
            shape,
            cluster: None,
            mark,
        };
        let p = Rect {
            x: 0.0,
            y: 0.0,
            w: 10.0,
            h: 10.0,
        };
        let visited = node_shape(&node(Some(Mark::Visited), Shape::Succeed), p);
        let not = node_shape(&node(None, Shape::Succeed), p);
        assert!(visited.contains("fill=\"#c8ecd0\""), "{visited}");
        assert!(not.contains("fill=\"#ffffff\""), "{not}");
    }

    #[test]
    fn labels_wrap_at_words_and_split_long_words() {
        assert_eq!(
            wrap(
                "$deploy = false and $states.input.policyAttached = true",
                30
            ),
            vec![
                "$deploy = false and",
                "$states.input.policyAttached =",
                "true"
            ]
        );
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), vec![""]);
    }
}
