//! Diagrams of state machines (as the console draws them) and of a stack's resources: one
//! model, rendered as Graphviz DOT, Mermaid, or SVG laid out here (no Graphviz needed).

pub mod asl;
pub mod dot;
pub mod mermaid;
pub mod svg;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Start,
    End,
    Task,
    Choice,
    Pass,
    Wait,
    Succeed,
    Fail,
    Parallel,
    Map,
    Resource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// An execution passed through it.
    Visited,
    /// An execution failed in it.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    Next,
    Default,
    Rule,
    Catch,
    /// Into a Parallel branch or a Map item processor.
    Branch,
    /// Out of a branch or item processor, to what follows its container.
    Join,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub label: String,
    pub shape: Shape,
    pub cluster: Option<usize>,
    pub mark: Option<Mark>,
}

#[derive(Debug, Clone)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub label: String,
    pub kind: EdgeKind,
    pub taken: bool,
}

#[derive(Debug, Clone)]
pub struct Cluster {
    pub label: String,
    pub parent: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct Diagram {
    pub title: String,
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    pub clusters: Vec<Cluster>,
}

impl Diagram {
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    pub fn add_node(&mut self, id: &str, label: &str, shape: Shape, cluster: Option<usize>) {
        if self.node(id).is_none() {
            self.nodes.push(Node {
                id: id.into(),
                label: label.into(),
                shape,
                cluster,
                mark: None,
            });
        }
    }

    pub fn add_edge(&mut self, from: &str, to: &str, label: &str, kind: EdgeKind) {
        if !self
            .edges
            .iter()
            .any(|e| e.from == from && e.to == to && e.label == label)
        {
            self.edges.push(Edge {
                from: from.into(),
                to: to.into(),
                label: label.into(),
                kind,
                taken: false,
            });
        }
    }

    /// Drops every edge implied by a longer path (a → c when a → b → c): what depends on
    /// what, without the clutter of restating it.
    pub fn transitive_reduction(&mut self) {
        let succ = |edges: &[Edge], n: &str| -> Vec<String> {
            edges
                .iter()
                .filter(|e| e.from == n)
                .map(|e| e.to.clone())
                .collect()
        };
        let implied: Vec<usize> = (0..self.edges.len())
            .filter(|&i| {
                let (from, to) = (&self.edges[i].from, &self.edges[i].to);
                // is `to` reachable from `from` other than by this edge?
                let mut todo: Vec<String> = succ(&self.edges, from)
                    .into_iter()
                    .filter(|s| s != to)
                    .collect();
                let mut seen = std::collections::BTreeSet::new();
                while let Some(n) = todo.pop() {
                    if &n == to {
                        return true;
                    }
                    if seen.insert(n.clone()) {
                        todo.extend(succ(&self.edges, &n));
                    }
                }
                false
            })
            .collect();
        let mut i = 0;
        self.edges.retain(|_| {
            i += 1;
            !implied.contains(&(i - 1))
        });
    }

    /// The clusters enclosing one, innermost first.
    pub fn cluster_chain(&self, c: Option<usize>) -> Vec<usize> {
        let mut out = Vec::new();
        let mut cur = c;
        while let Some(i) = cur {
            out.push(i);
            cur = self.clusters[i].parent;
        }
        out
    }

    /// Marks what an execution did: states it entered, the one it failed in, and the edges
    /// between states entered one after the other.
    pub fn mark_execution(&mut self, entered: &[String], failed: Option<&str>) {
        for n in &mut self.nodes {
            if entered.contains(&n.id) {
                n.mark = Some(Mark::Visited);
            }
            if Some(n.id.as_str()) == failed {
                n.mark = Some(Mark::Failed);
            }
        }
        let pos = |id: &str| entered.iter().position(|e| e == id);
        for e in &mut self.edges {
            e.taken = match (pos(&e.from), pos(&e.to)) {
                (Some(a), Some(b)) => a < b,
                _ => {
                    (e.from == asl::START && pos(&e.to) == Some(0))
                        || (e.to == asl::END && failed.is_none() && pos(&e.from).is_some())
                }
            };
        }
    }
}

/// The drawable formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Dot,
    Mermaid,
    Svg,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitive_reduction_keeps_only_direct_dependencies() {
        let mut d = Diagram::default();
        for n in ["a", "b", "c", "d"] {
            d.add_node(n, n, Shape::Resource, None);
        }
        for (a, b) in [("a", "b"), ("b", "c"), ("a", "c"), ("a", "d"), ("c", "d")] {
            d.add_edge(a, b, "", EdgeKind::Next);
        }
        d.transitive_reduction();
        let left: Vec<(&str, &str)> = d
            .edges
            .iter()
            .map(|e| (e.from.as_str(), e.to.as_str()))
            .collect();
        assert_eq!(left, vec![("a", "b"), ("b", "c"), ("c", "d")]);
    }
}

pub fn render(d: &Diagram, format: Format) -> String {
    match format {
        Format::Dot => dot::render(d),
        Format::Mermaid => mermaid::render(d),
        Format::Svg => svg::render(d),
    }
}
